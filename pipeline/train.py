"""Training: build the stacked training frame, fit both models, evaluate them on the
held-out validation cutoff, log everything to MLflow, register, and promote.

Time-aware by construction: the booster learns from the earlier training cutoffs, the
latest training cutoff calibrates (churn) and stops boosting (both), and the validation
cutoff, whose labels start after every training label has ended, only measures."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import mlflow
import numpy as np
import pandas as pd

from features.frame import build_features, feature_catalog
from features.population import build_active_spine, build_churn_labels, build_clv_labels
from models.evaluate import churn_metrics, clv_metrics
from models.validation import Split, evaluate_churn, evaluate_clv, fit_lifetime_model
from pipeline import tracking
from pipeline.config import Config, TrainingConfig, load_tuned_params
from pipeline.errors import ConfigError, DataError
from pipeline.generate import oracle_churn_probability
from pipeline.logs import stage
from pipeline.tables import Tables

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CutoffPlan:
    """Training cutoffs (oldest first) and the validation cutoff for one label horizon."""

    training: list[dt.date]
    validation: dt.date

    @property
    def fit(self) -> list[dt.date]:
        return self.training[:-1]

    @property
    def holdout(self) -> dt.date:
        """The latest training cutoff: calibration and early stopping, never fitting."""
        return self.training[-1]


def plan_cutoffs(data_end: dt.date, cfg: TrainingConfig, horizon_days: int) -> CutoffPlan:
    """The validation cutoff is the configured one or the latest first-of-month whose label
    window [cutoff, cutoff + horizon) ends by `data_end`; training cutoffs lie a horizon
    earlier, so no training label overlaps the validation window."""
    horizon = dt.timedelta(days=horizon_days)
    validation = cfg.validation_cutoff
    if validation is None:
        latest = data_end + dt.timedelta(days=1) - horizon
        validation = latest.replace(day=1)
    elif validation + horizon > data_end + dt.timedelta(days=1):
        raise ConfigError(
            f"training.validation_cutoff {validation} is too late: its {horizon_days}-day label window "
            f"needs data until {validation + horizon}, but the data ends on {data_end}."
        )
    last_training = validation - horizon
    spacing = dt.timedelta(days=cfg.spacing_days)
    training = [last_training - k * spacing for k in reversed(range(cfg.cutoffs))]
    return CutoffPlan(training, validation)


def build_training_frame(tables: Tables, cfg: Config, cutoffs: list[dt.date]) -> pd.DataFrame:
    """Features of every active customer at every cutoff, with both labels (a label is
    missing where its window is not complete)."""
    with stage("active customers") as info:
        spine = build_active_spine(tables, cutoffs, cfg.churn)
        info["rows"], info["cutoffs"] = len(spine), len(cutoffs)
    if spine.empty:
        raise DataError(f"No active customers at any training cutoff {cutoffs}: is the data too short?")
    frame = build_features(tables, spine, cfg.features)  # logs each stage
    with stage("churn and CLV labels"):
        frame["is_churned"] = build_churn_labels(tables, frame, cfg.churn).to_numpy()
        frame["future_revenue"] = build_clv_labels(tables, frame, cfg.clv.horizon_days).to_numpy()
    return frame


def rows_at(frame: pd.DataFrame, cutoffs: list[dt.date]) -> pd.DataFrame:
    rows = frame[frame["cutoff_date"].dt.date.isin(cutoffs)]
    if rows.empty:
        raise DataError(f"No active customers at cutoff(s) {cutoffs}; lower training.cutoffs or spacing_days.")
    return rows


def run_training(
    tables: Tables, cfg: Config, promote: Literal["auto", "force", "never"], config_text: str
) -> dict:
    """Train both models, log one MLflow run, register the models; return the run summary."""
    data_end = tables.last_event_at().date()
    churn_plan = plan_cutoffs(data_end, cfg.training, cfg.churn.horizon_days)
    clv_plan = plan_cutoffs(data_end, cfg.training, cfg.clv.horizon_days)
    all_cutoffs = sorted({*churn_plan.training, churn_plan.validation, *clv_plan.training, clv_plan.validation})
    with stage("build training frame") as info:
        frame = build_training_frame(tables, cfg, all_cutoffs)
        info["rows"], info["cutoffs"] = len(frame), len(all_cutoffs)
    features = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    tuned = load_tuned_params(cfg.model.tuned_params_path)
    churn_params, clv_params = tuned["churn"] | cfg.model.churn_params, tuned["clv"] | cfg.model.clv_params
    churn_split, clv_split = split_frame(frame, churn_plan), split_frame(frame, clv_plan)

    with stage("fit BG/NBD and Gamma-Gamma lifetime models"):
        churn_lifetime = fit_lifetime_model(churn_split.fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
        clv_lifetime = fit_lifetime_model(clv_split.fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
    with stage("train and validate churn model") as info:
        oracle = demo_world_oracle(cfg.data.path, churn_split.valid, churn_plan.validation, cfg.churn.horizon_days)
        churn = evaluate_churn(churn_split, features, churn_params, cfg.model.seed, churn_lifetime,
                               feature_catalog(cfg.features), oracle)
        info["validation_rows"], info["roc_auc"] = len(churn_split.valid), round(churn.metrics["roc_auc"], 4)
    with stage("train and validate clv model") as info:
        clv = evaluate_clv(clv_split, features, clv_params, cfg.model.seed, clv_lifetime)
        info["validation_rows"], info["spearman"] = len(clv_split.valid), round(clv.metrics["spearman"], 4)

    client = tracking.start_tracking(cfg.tracking)
    with mlflow.start_run(run_name=f"train-{churn_plan.validation}") as run:
        mlflow.set_tags({"git_commit": tracking.git_commit(), "churn_definition": cfg.churn.definition})
        mlflow.log_text(config_text, "config.yaml")
        mlflow.log_dict(cfg.model_dump(mode="json"), "resolved_config.json")
        mlflow.log_dict({"churn": _plan_dict(churn_plan), "clv": _plan_dict(clv_plan)}, "cutoffs.json")
        mlflow.log_dict(tables.fingerprint(), "data_fingerprint.json")
        mlflow.log_dict({"churn": churn.model.schema.names, "clv": clv.model.schema.names}, "features.json")
        mlflow.log_params({"seed": cfg.model.seed, "training_rows": len(frame)}
                          | {f"churn_{k}": v for k, v in churn_params.items()}
                          | {f"clv_{k}": v for k, v in clv_params.items()})
        for prefix, result in (("churn", churn), ("clv", clv)):
            mlflow.log_metrics({f"{prefix}_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
            for name, figure in result.figures.items():
                mlflow.log_figure(figure, f"plots/{name}")
            for name, table in result.tables.items():
                mlflow.log_table(table, f"{name}.json")
        with stage("log and register models"):
            churn_version = tracking.log_model(churn.model, cfg.tracking.churn_model_name,
                                               churn.model.example_input(churn_split.valid))
            clv_version = tracking.log_model(clv.model, cfg.tracking.clv_model_name,
                                             clv.model.example_input(clv_split.valid))
        decisions = {
            "churn": _promote(client, cfg.tracking.churn_model_name, churn_version, churn_split.valid, "is_churned",
                              churn.metrics["roc_auc"], lambda y, p: churn_metrics(y, p)["roc_auc"], promote),
            "clv": _promote(client, cfg.tracking.clv_model_name, clv_version, clv_split.valid, "future_revenue",
                            clv.metrics["spearman"], lambda y, p: clv_metrics(y, p)["spearman"], promote),
        }
        mlflow.log_dict(decisions, "promotion.json")
    return {"run_id": run.info.run_id, "churn": churn.metrics, "clv": clv.metrics, "promotion": decisions,
            "rows": len(frame), "churn_plan": _plan_dict(churn_plan)}


def split_frame(frame: pd.DataFrame, plan: CutoffPlan) -> Split:
    return Split(rows_at(frame, plan.fit), rows_at(frame, [plan.holdout]), rows_at(frame, [plan.validation]))


def demo_world_oracle(data_dir: Path, valid: pd.DataFrame, cutoff: dt.date, horizon_days: int) -> np.ndarray | None:
    """On a generated world, the true churn probability of each validation customer (the
    best any model could do); None on real data, which has no truth folder."""
    truth = data_dir / "truth"
    if not truth.is_dir():
        return None
    oracle = oracle_churn_probability(truth, cutoff, horizon_days).set_index("customer_id")
    return oracle["oracle_churn_probability"].reindex(valid["customer_id"]).to_numpy(dtype=float)


def _promote(client, name, version, valid, label, new_score, metric, mode) -> dict:
    """Make the new version champion if it beats the current champion on the current
    validation cutoff (or there is none); `force` always, `never` never."""
    decision = {"version": version, "score": new_score}
    current = tracking.champion_or_none(client, name)
    if mode == "never":
        decision["promoted"], decision["why"] = False, "--promote never"
    elif mode == "force" or current is None:
        decision["promoted"] = True
        decision["why"] = "--promote force" if mode == "force" else "no champion yet"
    else:
        try:
            champion_score = metric(valid[label], current.model.predict(valid))
        except Exception as exc:  # noqa: BLE001 - an old champion may not read today's features; replace it
            champion_score = float("-inf")
            log.warning("champion %s v%s cannot score today's features (%s)", name, current.version, exc)
        decision["champion_version"], decision["champion_score"] = current.version, champion_score
        decision["promoted"] = new_score > champion_score
        decision["why"] = (f"{new_score:.4f} {'>' if decision['promoted'] else '<='} champion v{current.version}"
                           f" {champion_score:.4f} on the same validation cutoff")
    if decision["promoted"]:
        tracking.set_champion(client, name, version)
    log.info("%s v%s %s: %s", name, version, "promoted to champion" if decision["promoted"] else "not promoted",
             decision["why"])
    return decision


def _plan_dict(plan: CutoffPlan) -> dict:
    return json.loads(json.dumps({"training": plan.training, "validation": plan.validation}, default=str))
