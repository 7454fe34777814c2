"""Backtest of the champion models: what they would have predicted at past cutoffs, against
what then happened, and what they predict for the next horizon.

Uses the one definition of "active" and "churned" (features/population.py) and the same
feature code as training and scoring; the models are the registered champions, loaded as
logged. A cutoff is only backtested once its label window is complete. Cutoffs the champion
was trained on are marked: a model looks better on data it has seen."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from features.frame import build_features
from features.population import build_active_spine
from pipeline import tracking
from pipeline.config import Config
from pipeline.logs import stage
from pipeline.tables import Tables
from pipeline.train import build_training_frame

log = logging.getLogger(__name__)
BACKTEST_CUTOFFS = 6


@dataclass
class Backtest:
    """`cutoffs`: one row per backtested cutoff; `forecast`: the prediction for the next
    horizon from the end of the data."""

    cutoffs: pd.DataFrame
    forecast: dict[str, object]
    churn_model: str
    clv_model: str


def complete_cutoffs(data_end: dt.date, horizon_days: int, until: dt.date, count: int) -> list[dt.date]:
    """The latest `count` first-of-month dates on or before `until` whose label window
    [cutoff, cutoff + horizon) ends by the end of the data, oldest first."""
    latest = min(data_end + dt.timedelta(days=1) - dt.timedelta(days=horizon_days), until)
    month = latest.replace(day=1)
    found = []
    while len(found) < count:
        found.append(month)
        month = (month - dt.timedelta(days=1)).replace(day=1)
    return sorted(found)


def cutoff_role(cutoff: dt.date, training: list[dt.date], validation: dt.date | None) -> str:
    """'trained on' and 'validation' cutoffs are rows the training run used; the others it never saw."""
    if cutoff == validation:
        return "validation"
    return "trained on" if cutoff in training else "not trained on"


def backtest_frame(tables: Tables, cfg: Config, cutoffs: list[dt.date], churn_model, clv_model,
                   training: list[dt.date], validation: dt.date | None) -> pd.DataFrame:
    """Per cutoff: active customers, mean predicted churn probability vs the realised churn
    rate, and predicted vs realised revenue over the CLV horizon."""
    features = build_training_frame(tables, cfg, cutoffs)  # the features and labels training sees
    frame = features[["cutoff_date"]].copy()
    frame["predicted_churn"] = np.asarray(churn_model.predict(features), dtype=float)
    frame["churned"] = features["is_churned"].to_numpy()
    frame["predicted_revenue"] = np.asarray(clv_model.predict(features), dtype=float)
    frame["realised_revenue"] = features["future_revenue"].to_numpy()
    data_end = tables.last_event_at().date()
    clv_complete = [c for c in cutoffs if c + dt.timedelta(days=cfg.clv.horizon_days) <= data_end
                    + dt.timedelta(days=1)]
    rows = []
    for cutoff, group in frame.groupby(frame["cutoff_date"].dt.date, sort=True):
        revenue_known = cutoff in clv_complete
        rows.append({
            "cutoff_date": cutoff,
            "role": cutoff_role(cutoff, training, validation),
            "customers": len(group),
            "predicted_churn_rate": group["predicted_churn"].mean(),
            "realised_churn_rate": group["churned"].mean(),
            "predicted_revenue": group["predicted_revenue"].sum(),
            "realised_revenue": group["realised_revenue"].sum() if revenue_known else np.nan,
        })
    table = pd.DataFrame(rows)
    table["churn_rate_error"] = table["predicted_churn_rate"] - table["realised_churn_rate"]
    table["revenue_error_share"] = table["predicted_revenue"] / table["realised_revenue"] - 1
    return table


def forecast(tables: Tables, cfg: Config, as_of: dt.date, churn_model, clv_model) -> dict[str, object]:
    spine = build_active_spine(tables, [as_of], cfg.churn)
    if spine.empty:
        return {"as_of": as_of, "customers": 0}
    features = build_features(tables, spine, cfg.features)
    return {"as_of": as_of, "customers": len(features), "clv_horizon_days": cfg.clv.horizon_days,
            "predicted_churn_rate": float(np.mean(churn_model.predict(features))),
            "predicted_revenue": float(np.sum(clv_model.predict(features)))}


def run_backtest(tables: Tables, cfg: Config, until: dt.date) -> Backtest | None:
    """The champions' backtest on the latest complete cutoffs before `until`, or None (with
    the reason logged) when no champion exists in the configured tracking store."""
    if not _store_exists(cfg.tracking.resolved_uri()):
        log.info("model backtest skipped: no tracking store at %s (run `make train` first)",
                 cfg.tracking.resolved_uri())
        return None
    client = tracking.start_tracking(cfg.tracking)
    churn = tracking.champion_or_none(client, cfg.tracking.churn_model_name)
    clv = tracking.champion_or_none(client, cfg.tracking.clv_model_name)
    if churn is None or clv is None:
        log.info("model backtest skipped: no champion churn and CLV models (run `make train` first)")
        return None
    training, validation = _training_cutoffs(churn.run_id)
    data_end = tables.last_event_at().date()
    cutoffs = complete_cutoffs(data_end, cfg.churn.horizon_days, until, BACKTEST_CUTOFFS)
    with stage("model backtest") as info:
        table = backtest_frame(tables, cfg, cutoffs, churn.model, clv.model, training, validation)
        ahead = forecast(tables, cfg, min(until, data_end + dt.timedelta(days=1)), churn.model, clv.model)
        info["cutoffs"], info["customers"] = len(table), int(table["customers"].sum())
    return Backtest(table, ahead, f"{churn.name} v{churn.version}", f"{clv.name} v{clv.version}")


def _training_cutoffs(run_id: str) -> tuple[list[dt.date], dt.date | None]:
    """The cutoffs the champion's training run used (logged as cutoffs.json)."""
    try:
        plan = mlflow.artifacts.load_dict(f"runs:/{run_id}/cutoffs.json")["churn"]
        return [dt.date.fromisoformat(c) for c in plan["training"]], dt.date.fromisoformat(plan["validation"])
    except Exception as exc:  # noqa: BLE001 - an older run without the file: roles unknown
        log.warning("cannot read the champion's training cutoffs (%s); roles are left open", exc)
        return [], None


def _store_exists(uri: str) -> bool:
    """A local SQLite store that does not exist yet has no champion (and asking MLflow
    would create it): sqlite:///relative.db or sqlite:////absolute.db."""
    prefix = "sqlite:///"
    return not uri.startswith(prefix) or Path(uri[len(prefix):]).is_file()
