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
from typing import Literal

import mlflow
import pandas as pd

from features.frame import build_features, feature_catalog
from features.population import build_active_spine, build_churn_labels, build_clv_labels
from models.churn import train_churn_model
from models.clv import train_clv_model
from models.evaluate import churn_metrics, clv_metrics
from pipeline import tracking
from pipeline.config import Config, TrainingConfig, load_tuned_params
from pipeline.errors import ConfigError, DataError
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
    spine = build_active_spine(tables, cutoffs, cfg.churn)
    if spine.empty:
        raise DataError(f"No active customers at any training cutoff {cutoffs}: is the data too short?")
    frame = build_features(tables, spine, cfg.features)
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
    candidates = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    params = cfg.model
    tuned = load_tuned_params(params.tuned_params_path)
    churn_params, clv_params = tuned["churn"] | params.churn_params, tuned["clv"] | params.clv_params
    client = tracking.start_tracking(cfg.tracking)
    with mlflow.start_run(run_name=f"train-{churn_plan.validation}") as run:
        mlflow.set_tags({"git_commit": tracking.git_commit(), "churn_definition": cfg.churn.definition})
        mlflow.log_text(config_text, "config.yaml")
        mlflow.log_dict({"churn": _plan_dict(churn_plan), "clv": _plan_dict(clv_plan)}, "cutoffs.json")
        mlflow.log_dict({"tables": tables.row_counts, "quarantined": tables.quarantined,
                         "data_end": str(data_end)}, "data_fingerprint.json")
        with stage("train churn model") as info:
            churn = train_churn_model(
                rows_at(frame, churn_plan.fit), rows_at(frame, churn_plan.fit)["is_churned"],
                rows_at(frame, [churn_plan.holdout]), rows_at(frame, [churn_plan.holdout])["is_churned"],
                candidates, churn_params, params.seed,
            )
            valid = rows_at(frame, [churn_plan.validation])
            churn_scores = churn_metrics(valid["is_churned"], churn.predict(valid))
            info["validation_rows"], info["roc_auc"] = len(valid), round(churn_scores["roc_auc"], 4)
        with stage("train clv model") as info:
            clv = train_clv_model(
                rows_at(frame, clv_plan.fit), rows_at(frame, clv_plan.fit)["future_revenue"],
                rows_at(frame, [clv_plan.holdout]), rows_at(frame, [clv_plan.holdout])["future_revenue"],
                candidates, clv_params, params.seed,
            )
            clv_valid = rows_at(frame, [clv_plan.validation])
            clv_scores = clv_metrics(clv_valid["future_revenue"], clv.predict(clv_valid))
            info["validation_rows"], info["spearman"] = len(clv_valid), round(clv_scores["spearman"], 4)
        mlflow.log_params({f"churn_{k}": v for k, v in churn_params.items()})
        mlflow.log_params({f"clv_{k}": v for k, v in clv_params.items()})
        mlflow.log_params({"seed": params.seed, "churn_features": len(churn.schema.names),
                           "churn_trees": churn.booster.best_iteration_ or churn.booster.n_estimators,
                           "clv_trees": clv.booster.best_iteration_ or clv.booster.n_estimators})
        mlflow.log_metrics({f"churn_{k}": v for k, v in churn_scores.items()})
        mlflow.log_metrics({f"clv_{k}": v for k, v in clv_scores.items()})
        mlflow.log_dict({"churn": churn.schema.names, "clv": clv.schema.names}, "features.json")
        with stage("log and register models"):
            churn_version = tracking.log_model(churn, cfg.tracking.churn_model_name, churn.schema.example_input(valid))
            clv_version = tracking.log_model(clv, cfg.tracking.clv_model_name, clv.schema.example_input(clv_valid))
        decisions = {
            "churn": _promote(client, cfg.tracking.churn_model_name, churn_version, valid, "is_churned",
                              churn_scores["roc_auc"], lambda y, p: churn_metrics(y, p)["roc_auc"], promote),
            "clv": _promote(client, cfg.tracking.clv_model_name, clv_version, clv_valid, "future_revenue",
                            clv_scores["spearman"], lambda y, p: clv_metrics(y, p)["spearman"], promote),
        }
        mlflow.log_dict(decisions, "promotion.json")
    return {"run_id": run.info.run_id, "churn": churn_scores, "clv": clv_scores, "promotion": decisions,
            "rows": len(frame), "churn_plan": _plan_dict(churn_plan)}


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
