"""Backtest of the champion models: what they would have predicted at past cutoffs, against
what then happened, and what they predict for the next horizon.

Uses the one definition of "active", "churned" and of a complete label window
(features/population.py), the model-input layer training and scoring use
(features/model_input.py), and the registered champions loaded through pipeline.tracking.
A cutoff is only backtested once its churn label window is complete. Cutoffs the champion
was trained on are marked: a model looks better on data it has seen."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.model_input import build_training_frame, features_at
from features.population import label_window_complete, latest_complete_cutoff
from pipeline import tracking
from pipeline.config import Config
from pipeline.errors import ModelNotFoundError
from pipeline.logs import stage
from pipeline.reporting.periods import add_months
from pipeline.tables import Tables

log = logging.getLogger(__name__)
BACKTEST_CUTOFFS = 6


@dataclass
class Backtest:
    """`cutoffs`: one row per backtested cutoff; `forecast`: the prediction for the next
    horizon from the end of the data; `forward`: the training run's walk-forward backtest,
    one row per origin and model (what a model trained only on the past reached there)."""

    cutoffs: pd.DataFrame
    forecast: dict[str, object]
    churn_model: str
    clv_model: str
    forward: pd.DataFrame | None = None


FORWARD_COLUMNS = ["model", "origin", "customers", "roc_auc", "ece", "predicted_churn_rate", "churn_rate",
                   "spearman", "aggregate_error_pct", "predicted_revenue", "realised_revenue"]


def forward_table(churn_run: str, clv_run: str) -> pd.DataFrame | None:
    """The champions' walk-forward backtest as their training run logged it (None for
    champions trained before it existed)."""
    rows = [{"model": kind} | row for kind, run in (("churn", churn_run), ("clv", clv_run))
            for row in tracking.champion_backtest(run, kind)]
    if not rows:
        return None
    table = pd.DataFrame(rows)
    return table.reindex(columns=[c for c in FORWARD_COLUMNS if c in table])


def complete_cutoffs(data_end: dt.date, horizon_days: int, until: dt.date, count: int) -> list[dt.date]:
    """The latest `count` first-of-month dates on or before `until` whose label window
    [cutoff, cutoff + horizon) ends by the end of the data, oldest first."""
    latest = latest_complete_cutoff(data_end, horizon_days, until)
    return [add_months(latest, -back) for back in reversed(range(count))]


def cutoff_role(cutoff: dt.date, training: list[dt.date], validation: dt.date | None) -> str:
    """'trained on' and 'validation' cutoffs are rows the training run used; the others it never saw."""
    if cutoff == validation:
        return "validation"
    return "trained on" if cutoff in training else "not trained on"


def backtest_frame(tables: Tables, cfg: Config, cutoffs: list[dt.date], churn_model, clv_model,
                   training: list[dt.date], validation: dt.date | None) -> pd.DataFrame:
    """Per cutoff: active customers, mean predicted churn probability vs the realised churn
    rate, and predicted vs realised revenue over the CLV horizon (missing where that window
    is not complete yet)."""
    features = build_training_frame(tables, cfg, cutoffs)  # the features and labels training sees
    frame = features[["cutoff_date"]].copy()
    frame["predicted_churn"] = np.asarray(churn_model.predict(features), dtype=float)
    frame["churned"] = features["is_churned"].to_numpy()
    frame["predicted_revenue"] = np.asarray(clv_model.predict(features), dtype=float)
    frame["realised_revenue"] = features["future_revenue"].to_numpy()
    data_end = tables.last_event_at().date()
    rows = []
    for cutoff, group in frame.groupby(frame["cutoff_date"].dt.date, sort=True):
        revenue_known = label_window_complete(cutoff, cfg.clv.horizon_days, data_end)
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
    """The champions' view of the next horizon from `as_of`: active customers, their mean
    predicted churn probability and their summed predicted revenue."""
    features = features_at(tables, cfg, as_of)
    if features.empty:
        return {"as_of": as_of, "customers": 0}
    return {"as_of": as_of, "customers": len(features), "clv_horizon_days": cfg.clv.horizon_days,
            "predicted_churn_rate": float(np.mean(churn_model.predict(features))),
            "predicted_revenue": float(np.sum(clv_model.predict(features)))}


def run_backtest(tables: Tables, cfg: Config, until: dt.date) -> Backtest | None:
    """The champions' backtest on the latest complete cutoffs before `until`, or None (with
    the reason logged) when no champion exists in the configured tracking store."""
    if not tracking.store_exists(cfg.tracking):
        log.info("model backtest skipped: no tracking store at %s (run `make train` first)",
                 cfg.tracking.resolved_uri())
        return None
    try:
        churn, clv = tracking.load_champions(cfg.tracking)  # the pair of one promotion, as scoring uses
    except ModelNotFoundError as exc:
        log.info("model backtest skipped: %s", exc)
        return None
    training, validation = tracking.training_cutoffs_of(churn.run_id)
    data_end = tables.last_event_at().date()
    cutoffs = complete_cutoffs(data_end, cfg.churn.horizon_days, until, BACKTEST_CUTOFFS)
    with stage("model backtest") as info:
        # the fitted models inside the champions: they read their own columns of the frame
        table = backtest_frame(tables, cfg, cutoffs, churn.fitted, clv.fitted, training, validation)
        ahead = forecast(tables, cfg, min(until, data_end + dt.timedelta(days=1)), churn.fitted, clv.fitted)
        info["cutoffs"], info["customers"] = len(table), int(table["customers"].sum())
    return Backtest(table, ahead, f"{churn.name} v{churn.version}", f"{clv.name} v{clv.version}",
                    forward_table(churn.run_id, clv.run_id))
