"""`churn tune`: an Optuna study per model, persistent in SQLite so that an interrupted
study resumes; best parameters go to MLflow and to `model.tuned_params_path`, where
`churn train` picks them up (explicit `model.*_params` in the config still win)."""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import optuna
import yaml

from features.frame import feature_catalog
from models.lifetime import LIFETIME_FEATURES
from models.tuning import TuningData, churn_objective, clv_objective, tuned_params
from models.validation import fit_lifetime_model
from pipeline import tracking
from pipeline.config import Config
from pipeline.files import atomic_write_text
from pipeline.logs import stage
from pipeline.tables import Tables
from pipeline.train import CutoffPlan, build_training_frame, plan_cutoffs, rows_at

log = logging.getLogger(__name__)


def _tuning_data(frame, plan: CutoffPlan, target: str, features: list[str], cfg: Config) -> TuningData:
    """The rows the models learn from and are judged on while tuning, with the lifetime
    model's outputs added exactly as training adds them."""
    fit, holdout = rows_at(frame, plan.fit), rows_at(frame, [plan.holdout])
    lifetime = fit_lifetime_model(fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
    fit, holdout = lifetime.enrich(fit), lifetime.enrich(holdout)
    return TuningData(fit, fit[target], holdout, holdout[target], [*features, *LIFETIME_FEATURES])


def run_tuning(tables: Tables, cfg: Config, trials: int, timeout_s: float | None, storage: str) -> dict:
    data_end = tables.last_event_at().date()
    plans = {"churn": plan_cutoffs(data_end, cfg.training, cfg.churn.horizon_days),
             "clv": plan_cutoffs(data_end, cfg.training, cfg.clv.horizon_days)}
    cutoffs = sorted({c for p in plans.values() for c in p.training})
    with stage("build tuning frame") as info:
        frame = build_training_frame(tables, cfg, cutoffs)
        info["rows"] = len(frame)
    features = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    studies = {
        "churn": ("maximize", churn_objective, "is_churned"),
        "clv": ("minimize", clv_objective, "future_revenue"),
    }
    best: dict[str, dict] = {}
    tracking.start_tracking(cfg.tracking)
    with mlflow.start_run(run_name=f"tune-{dt.date.today()}"):
        for name, (direction, objective, target) in studies.items():
            data = _tuning_data(frame, plans[name], target, features, cfg)
            study = optuna.create_study(
                study_name=f"{name}-{plans[name].validation}", storage=storage, load_if_exists=True,
                direction=direction, sampler=optuna.samplers.TPESampler(seed=cfg.model.seed),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
            )
            done_before = len(study.trials)
            with stage(f"tune {name} ({trials} trials, resuming after {done_before})") as info:
                study.optimize(lambda t, d=data, o=objective: o(t, d, cfg.model.seed),
                               n_trials=trials, timeout=timeout_s, gc_after_trial=True)
                states = [t.state for t in study.trials[done_before:]]
                info["complete"] = states.count(optuna.trial.TrialState.COMPLETE)
                info["pruned"] = states.count(optuna.trial.TrialState.PRUNED)
                info["best"] = round(study.best_value, 4)
            best[name] = tuned_params(study)
            mlflow.log_params({f"{name}_{k}": v for k, v in best[name].items()})
            mlflow.log_metric(f"{name}_best_holdout_{'auc' if name == 'churn' else 'tweedie'}", study.best_value)
    target = cfg.model.tuned_params_path
    atomic_write_text(yaml.safe_dump(best, sort_keys=True), target)
    log.info("best parameters written to %s; `churn train` uses them from now on", target)
    return best
