"""The model-input layer: which cutoffs a model learns, calibrates and is judged on, the
frame of features and labels over those cutoffs, and the rows of one date to score.

Training, tuning, the backtest and scoring all build their input here, from the one
definition of active customers and labels (features/population.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from features.frame import build_features
from features.population import (
    build_active_spine,
    build_churn_labels,
    build_clv_labels,
    label_window_complete,
    latest_complete_cutoff,
)
from pipeline.config import Config, TrainingConfig
from pipeline.errors import ConfigError, DataError
from pipeline.logs import stage
from pipeline.tables import Tables


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

    def as_dict(self) -> dict[str, object]:
        return {"training": [c.isoformat() for c in self.training], "validation": self.validation.isoformat()}


@dataclass(frozen=True)
class Split:
    """Rows of the training frame: `fit` (earlier training cutoffs), `holdout` (latest
    training cutoff: calibration and early stopping) and `valid` (validation cutoff)."""

    fit: pd.DataFrame
    holdout: pd.DataFrame
    valid: pd.DataFrame


def plan_cutoffs(data_end: dt.date, cfg: TrainingConfig, horizon_days: int) -> CutoffPlan:
    """The validation cutoff is the configured one or the latest complete cutoff; training
    cutoffs lie a horizon earlier, so no training label overlaps the validation window."""
    horizon = dt.timedelta(days=horizon_days)
    validation = cfg.validation_cutoff
    if validation is None:
        validation = latest_complete_cutoff(data_end, horizon_days)
    elif not label_window_complete(validation, horizon_days, data_end):
        raise ConfigError(
            f"training.validation_cutoff {validation} is too late: its {horizon_days}-day label window "
            f"needs data until {validation + horizon}, but the data ends on {data_end}."
        )
    last_training = validation - horizon
    spacing = dt.timedelta(days=cfg.spacing_days)
    training = [last_training - k * spacing for k in reversed(range(cfg.cutoffs))]
    return CutoffPlan(training, validation)


def all_cutoffs(plans) -> list[dt.date]:
    """Every cutoff any of the plans needs, oldest first: built once, in one frame."""
    return sorted({cutoff for plan in plans for cutoff in (*plan.training, plan.validation)})


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


def features_at(tables: Tables, cfg: Config, as_of: dt.date) -> pd.DataFrame:
    """The features of every customer active at one date (empty when nobody is): what a
    model scores on that date."""
    return build_features(tables, build_active_spine(tables, [as_of], cfg.churn), cfg.features)


def rows_at(frame: pd.DataFrame, cutoffs: list[dt.date]) -> pd.DataFrame:
    rows = frame[frame["cutoff_date"].dt.date.isin(cutoffs)]
    if rows.empty:
        raise DataError(f"No active customers at cutoff(s) {cutoffs}; lower training.cutoffs or spacing_days.")
    return rows


def split_frame(frame: pd.DataFrame, plan: CutoffPlan) -> Split:
    return Split(rows_at(frame, plan.fit), rows_at(frame, [plan.holdout]), rows_at(frame, [plan.validation]))
