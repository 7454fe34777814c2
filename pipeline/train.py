"""`churn train`: build the training frame, judge every candidate on the walk-forward
backtest, refit the winners on the freshest complete labels, then log, register and
promote them in MLflow.

Forward-honest by construction (features/model_input.py): at each backtest origin the
candidates learn only from labels that ended by it; the refit that ships learns from the
latest cutoffs whose label windows are complete, with the settings the backtest chose."""

from __future__ import annotations

from typing import Literal

from features.catalog import feature_catalog
from features.model_input import (
    CutoffPlan,
    all_cutoffs,
    build_training_frame,
    fold_rows,
    plan_cutoffs,
    rows_at,
)
from features.population import latest_complete_cutoff
from models.evaluation import Choice, Horizons, Oracle, evaluate_churn, evaluate_clv
from pipeline import tracking
from pipeline.config import Config, model_params
from pipeline.demo import is_demo_world
from pipeline.logs import progress, stage
from pipeline.tables import Tables


def run_training(tables: Tables, cfg: Config, promote: Literal["auto", "force", "never"], config_text: str,
                 config_name: str = "config") -> dict:
    """Train both models, log one MLflow run, register the models; return the run summary."""
    plans = training_plans(tables, cfg)
    with stage("build training frame") as info:
        frame = build_training_frame(tables, cfg, all_cutoffs(plans.values()))
        info["rows"], info["cutoffs"] = len(frame), len(all_cutoffs(plans.values()))
    catalog = feature_catalog(cfg.features)
    features = [f.name for f in catalog if f.name in frame]
    params = model_params(cfg.model)
    horizons = Horizons(cfg.churn.horizon_days, cfg.clv.horizon_days)
    production = {kind: rows_at(frame, plan.production) for kind, plan in plans.items()}
    choice = {kind: Choice(cfg.model.seed, cfg.training.selection_tolerance, params[kind]["tuned"] or None,
                           params[kind]["explicit"] or None) for kind in plans}
    with stage("backtest churn candidates and refit the winner") as info:
        # each model's folds are built for it and let go after: every fold is a copy of its rows
        churn = evaluate_churn(fold_rows(frame, plans["churn"]), production["churn"], features, choice["churn"],
                               horizons, catalog, demo_world_oracle(cfg), cfg.scoring.reasons_per_customer, progress)
        info |= {"origins": len(churn.backtest.origins), "chosen": churn.backtest.chosen,
                 "roc_auc": round(churn.metrics["roc_auc"], 4)}
    with stage("backtest clv candidates and refit the winner") as info:
        clv = evaluate_clv(fold_rows(frame, plans["clv"]), production["clv"], features, choice["clv"], horizons,
                           progress)
        info |= {"origins": len(clv.backtest.origins), "chosen": clv.backtest.chosen,
                 "spearman": round(clv.metrics["spearman"], 4)}
    trained = tracking.TrainedModels(
        churn=churn, clv=clv, plans=plans, example_rows={k: production[k].tail(50) for k in plans},
        training_rows=len(frame), data_fingerprint=tables.fingerprint(), config_text=config_text,
        config_name=config_name, frame=frame)
    return tracking.log_training_run(cfg, trained, promote)


def training_plans(tables: Tables, cfg: Config) -> dict[str, CutoffPlan]:
    """Both models' plans on one grid of cutoffs, anchored at the churn model's latest
    complete cutoff, so that the frame is built once for both."""
    data_end = tables.last_event_at().date()
    anchor = latest_complete_cutoff(data_end, min(cfg.churn.horizon_days, cfg.clv.horizon_days))
    return {"churn": plan_cutoffs(data_end, cfg.training, cfg.churn.horizon_days, anchor),
            "clv": plan_cutoffs(data_end, cfg.training, cfg.clv.horizon_days, anchor)}


def demo_world_oracle(cfg: Config) -> Oracle | None:
    """On a generated demo world, the true churn probability of given customers at a cutoff
    (the best any model could do); None on real data, which has no truth."""
    if not is_demo_world(cfg.data.path):
        return None
    from pipeline.demo.truth import oracle_for  # only a demo world has a truth to read

    return lambda customer_ids, cutoff: oracle_for(cfg.data.path, customer_ids, cutoff, cfg.churn.horizon_days)
