"""The model-input layer: the walk-forward plan (which cutoffs each backtest origin learns
from, and which the production refit learns from), the frame of features and labels over
those cutoffs, and the rows of one date to score.

Training, tuning, the backtest and scoring all build their input here, from the one
definition of active customers and labels (features/population.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from features.frame import build_features, held_gb
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
class Fold:
    """One origin of the walk-forward backtest: a model learns from `training` (cutoffs whose
    label windows end on or before `origin`), scores `origin` and is judged on what happened
    in the horizon after it, exactly as tonight's model will be."""

    origin: dt.date
    training: list[dt.date]

    def as_dict(self) -> dict[str, object]:
        return {"origin": self.origin.isoformat(), "training": [c.isoformat() for c in self.training]}


@dataclass(frozen=True)
class CutoffPlan:
    """The cutoffs of one label horizon: the backtest's folds (oldest origin first) and the
    production refit's training cutoffs, which end at the latest complete cutoff."""

    folds: list[Fold]
    production: list[dt.date]
    horizon_days: int

    @property
    def latest_origin(self) -> dt.date:
        return self.folds[-1].origin

    @property
    def cutoffs(self) -> list[dt.date]:
        """Every cutoff the plan needs, oldest first."""
        return sorted({*self.production, *(c for f in self.folds for c in (*f.training, f.origin))})

    def as_dict(self) -> dict[str, object]:
        return {"horizon_days": self.horizon_days, "production": [c.isoformat() for c in self.production],
                "folds": [f.as_dict() for f in self.folds]}


@dataclass(frozen=True)
class FoldRows:
    """The rows of one fold: `training` (its training cutoffs) and `origin` (scored, judged)."""

    origin_date: dt.date
    training: pd.DataFrame
    origin: pd.DataFrame


def plan_cutoffs(data_end: dt.date, cfg: TrainingConfig, horizon_days: int, anchor: dt.date | None = None
                 ) -> CutoffPlan:
    """The walk-forward plan for one horizon. All cutoffs lie on one grid, `spacing_days`
    apart, ending at `anchor` (default: the latest complete cutoff of this horizon), so that
    models of different horizons share the cutoffs they need. The backtest's origins are the
    latest `backtest_origins` grid dates whose label window is complete, ending at
    `training.validation_cutoff` when set; each fold learns from the `cutoffs` grid dates
    whose label windows end by its origin. The production refit learns from the latest
    `cutoffs` grid dates with a complete label window: the freshest labels there are."""
    horizon, spacing = dt.timedelta(days=horizon_days), dt.timedelta(days=cfg.spacing_days)
    anchor = anchor or latest_complete_cutoff(data_end, horizon_days)
    latest_complete = _grid_at_or_before(anchor, spacing, data_end + dt.timedelta(days=1) - horizon)
    latest_origin = latest_complete
    if cfg.validation_cutoff is not None:
        if not label_window_complete(cfg.validation_cutoff, horizon_days, data_end):
            raise ConfigError(
                f"training.validation_cutoff {cfg.validation_cutoff} is too late: its {horizon_days}-day label "
                f"window needs data until {cfg.validation_cutoff + horizon}, but the data ends on {data_end}.")
        latest_origin = cfg.validation_cutoff
    origins = [latest_origin - k * spacing for k in reversed(range(cfg.backtest_origins))]
    folds = [Fold(origin, _grid_before(anchor, spacing, origin - horizon, cfg.cutoffs)) for origin in origins]
    return CutoffPlan(folds, _grid_before(anchor, spacing, latest_complete, cfg.cutoffs), horizon_days)


def _grid_at_or_before(anchor: dt.date, spacing: dt.timedelta, latest: dt.date) -> dt.date:
    """The latest date of the grid `anchor + k * spacing` (k any integer) on or before `latest`."""
    return anchor + ((latest - anchor) // spacing) * spacing


def _grid_before(anchor: dt.date, spacing: dt.timedelta, latest: dt.date, count: int) -> list[dt.date]:
    """The `count` grid dates on or before `latest`, oldest first."""
    last = _grid_at_or_before(anchor, spacing, latest)
    return [last - k * spacing for k in reversed(range(count))]


def all_cutoffs(plans) -> list[dt.date]:
    """Every cutoff any of the plans needs, oldest first: built once, in one frame."""
    return sorted({cutoff for plan in plans for cutoff in plan.cutoffs})


def build_training_frame(tables: Tables, cfg: Config, cutoffs: list[dt.date]) -> pd.DataFrame:
    """Features of every active customer at every cutoff, with both labels (a label is
    missing where its window is not complete)."""
    if tables.in_place:  # the stack reads each table many times over
        with stage("tables read in place, into the engine") as info:
            info["tables"] = ", ".join(sorted(tables.in_place))
            tables.store()
    with stage("active customers") as info:
        spine = build_active_spine(tables, cutoffs, cfg.churn)
        info["rows"], info["cutoffs"] = len(spine), len(cutoffs)
        if cfg.training.max_customers is not None:
            customers = spine["customer_id"].nunique()
            spine = sample_customers(spine, cfg.training.max_customers, cfg.model.seed)
            if len(spine) < info["rows"]:
                info["sampled"] = f"{cfg.training.max_customers:,} of {customers:,} customers (training.max_customers)"
                info["rows"] = len(spine)
    if spine.empty:
        raise DataError(f"No active customers at any training cutoff {cutoffs}: is the data too short?")
    frame = build_features(tables, spine, cfg.features)  # logs each stage
    with stage("churn and CLV labels"), tables.memory_shared_with(held_gb(frame)):
        frame["is_churned"] = build_churn_labels(tables, frame, cfg.churn).to_numpy()
        frame["future_revenue"] = build_clv_labels(tables, frame, cfg.clv.horizon_days).to_numpy()
    return frame


def sample_customers(spine: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    """The spine's rows of at most `limit` customers, every cutoff of each: those with the
    smallest hash of (seed, customer_id). The hash is pandas' stable SipHash, so the same
    customers are drawn on any machine, engine or run, and a customer in the sample of a
    smaller limit is in the sample of every larger one."""
    customers = pd.Series(spine["customer_id"].unique())
    if len(customers) <= limit:
        return spine
    keys = pd.util.hash_pandas_object(customers.astype(str), index=False, hash_key=f"{seed:016d}"[-16:])
    drawn = customers[keys.argsort(kind="stable")[:limit].to_numpy()]
    return spine[spine["customer_id"].isin(drawn)].reset_index(drop=True)


def features_at(tables: Tables, cfg: Config, as_of: dt.date) -> pd.DataFrame:
    """The features of every customer active at one date (empty when nobody is): what a
    model scores on that date."""
    return build_features(tables, build_active_spine(tables, [as_of], cfg.churn), cfg.features)


def rows_at(frame: pd.DataFrame, cutoffs: list[dt.date]) -> pd.DataFrame:
    rows = frame[frame["cutoff_date"].dt.date.isin(cutoffs)]
    if rows.empty:
        raise DataError(f"No active customers at cutoff(s) {[str(c) for c in cutoffs]}: the data's history is "
                        "too short for them; lower training.cutoffs or spacing_days.")
    return rows


def fold_rows(frame: pd.DataFrame, plan: CutoffPlan) -> list[FoldRows]:
    """The rows of each fold of the plan (folds without any training or origin rows, at the
    start of a short history, are left out: the backtest says how many it used)."""
    dates = frame["cutoff_date"].dt.date
    folds = []
    for fold in plan.folds:
        training, origin = frame[dates.isin(fold.training)], frame[dates == fold.origin]
        if len(training) and len(origin):
            folds.append(FoldRows(fold.origin, training, origin))
    return folds
