"""Training is forward-honest, checked on a generated demo world: no backtest fold learns
from anything that happened after its origin (the training-side twin of the features'
point-in-time test), and the model trained on data before a date stays calibrated on that
later date, which it never saw."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_catalog
from features.model_input import all_cutoffs, build_training_frame, fold_rows, rows_at
from features.population import latest_complete_cutoff
from models.evaluation import Choice, Horizons, evaluate_churn
from models.metrics import expected_calibration_error
from pipeline.config import parse_config
from pipeline.demo.world import generate_world
from pipeline.tables import load_tables
from pipeline.train import training_plans
from tests.benchmarks.forward_check import truncate_data
from tests.conftest import RUN_AT

KEYS = ["customer_id", "cutoff_date"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("forward") / "data"
    generate_world(out, 4_000, seed=11)
    return out


def config(data: Path):
    return parse_config({"data": {"path": str(data)}, "training": {"cutoffs": 3, "backtest_origins": 2},
                         "clv": {"horizon_days": 180}})


def frame_of(data: Path, cutoffs: list[dt.date]) -> pd.DataFrame:
    cfg = config(data)
    frame = build_training_frame(load_tables(data, RUN_AT, None), cfg, cutoffs)
    return frame.sort_values(KEYS).reset_index(drop=True)


@pytest.mark.parametrize("kind", ["churn", "clv"])
def test_no_fold_learns_from_anything_after_its_origin(world, tmp_path, kind):
    """Each fold's training rows (features and labels) and its origin's features are the same
    whether or not the data after the origin exists."""
    cfg = config(world)
    plan = training_plans(load_tables(world, RUN_AT, None), cfg)[kind]
    label = {"churn": "is_churned", "clv": "future_revenue"}[kind]
    for fold in (plan.folds[0], plan.folds[-1]):
        cutoffs = [*fold.training, fold.origin]
        full = frame_of(world, cutoffs)
        known = truncate_data(world, tmp_path / f"{kind}-{fold.origin}", fold.origin, "auto")
        assert known["transactions"]["kept"] < known["transactions"]["of"]  # there was a later to hide
        before = frame_of(tmp_path / f"{kind}-{fold.origin}", cutoffs)
        training = full["cutoff_date"].dt.date.isin(fold.training)
        assert before[label][before["cutoff_date"].dt.date.isin(fold.training)].notna().all()
        features = [c for c in full if c not in ("is_churned", "future_revenue")]  # the other label is not learned
        pd.testing.assert_frame_equal(full.loc[training, [*features, label]].reset_index(drop=True),
                                      before.loc[before["cutoff_date"].dt.date.isin(fold.training),
                                                 [*features, label]].reset_index(drop=True))
        pd.testing.assert_frame_equal(full.loc[~training, features].reset_index(drop=True),
                                      before.loc[~before["cutoff_date"].dt.date.isin(fold.training),
                                                 features].reset_index(drop=True))


def test_calibration_holds_on_a_later_cutoff_the_model_never_saw(world, tmp_path):
    """Train as a user would have on the data before `later` (backtest, then refit on the
    freshest labels), score `later`, and compare with what customers then did."""
    full_tables = load_tables(world, RUN_AT, None)
    later = latest_complete_cutoff(full_tables.last_event_at().date(), 90)
    truncate_data(world, tmp_path / "known", later, "auto")
    cfg = config(tmp_path / "known")
    tables = load_tables(tmp_path / "known", RUN_AT, None)
    plan = training_plans(tables, cfg)["churn"]
    frame = build_training_frame(tables, cfg, all_cutoffs([plan]))
    features = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    evaluation = evaluate_churn(fold_rows(frame, plan), rows_at(frame, plan.production), features,
                                Choice(seed=42, tolerance=0.002), Horizons(90, 180), feature_catalog(cfg.features))
    assert max(plan.production) + dt.timedelta(days=90) <= later  # nothing about `later` was learned

    rows = build_training_frame(full_tables, config(world), [later])
    probability = evaluation.model.predict(rows)
    churned = rows["is_churned"].to_numpy()
    # 2,440 customers there: a perfectly calibrated model would show an ECE of about 0.015
    assert expected_calibration_error(churned, probability) <= 0.03
    assert abs(float(np.mean(probability)) - float(churned.mean())) <= 0.03
