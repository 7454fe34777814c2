"""The model-input layer: the latest complete cutoff and the walk-forward plan, pinned by
dates, and its leakage guarantee: no fold learns from a label window that ends after its
origin."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features.model_input import build_training_frame, plan_cutoffs, sample_customers
from features.population import label_window_complete, latest_complete_cutoff
from pipeline.config import Config, TrainingConfig
from pipeline.errors import ConfigError
from pipeline.tables import load_tables
from tests.conftest import RUN_AT

D = dt.date


def test_a_label_window_is_complete_once_it_ends_by_the_last_day_of_data():
    # [2025-10-03, 2026-01-01) ends with 2025-12-31, the last day with events
    assert label_window_complete(D(2025, 10, 3), 90, D(2025, 12, 31))
    assert not label_window_complete(D(2025, 10, 4), 90, D(2025, 12, 31))


def test_the_latest_complete_cutoff_is_a_first_of_month():
    assert latest_complete_cutoff(D(2025, 12, 31), 90) == D(2025, 10, 1)
    # the window of 2025-10-01 needs data until 2025-12-29: one day short, so September
    assert latest_complete_cutoff(D(2025, 12, 28), 90) == D(2025, 9, 1)
    assert latest_complete_cutoff(D(2025, 12, 29), 90) == D(2025, 10, 1)
    # never later than `until`
    assert latest_complete_cutoff(D(2025, 12, 31), 90, until=D(2025, 6, 15)) == D(2025, 6, 1)
    for horizon in (30, 90, 180, 365):
        cutoff = latest_complete_cutoff(D(2025, 12, 31), horizon)
        assert label_window_complete(cutoff, horizon, D(2025, 12, 31))


def test_the_plan_pins_backtest_folds_and_the_production_refit_by_date():
    plan = plan_cutoffs(D(2025, 12, 31), TrainingConfig(cutoffs=3, spacing_days=30, backtest_origins=3), 90)
    assert [f.origin for f in plan.folds] == [D(2025, 8, 2), D(2025, 9, 1), D(2025, 10, 1)]
    assert plan.folds[-1].training == [D(2025, 5, 4), D(2025, 6, 3), D(2025, 7, 3)]
    assert plan.folds[0].training == [D(2025, 3, 5), D(2025, 4, 4), D(2025, 5, 4)]
    # the refit learns from the freshest labels there are: they end with the data
    assert plan.production == [D(2025, 8, 2), D(2025, 9, 1), D(2025, 10, 1)]
    assert plan.as_dict()["folds"][-1] == {"origin": "2025-10-01", "training": ["2025-05-04", "2025-06-03",
                                                                               "2025-07-03"]}


@pytest.mark.parametrize("horizon", [30, 90, 180, 365])
@pytest.mark.parametrize("data_end", [D(2025, 12, 31), D(2025, 7, 14), D(2024, 2, 29)])
def test_no_fold_learns_from_a_label_window_that_ends_after_its_origin(horizon, data_end):
    cfg = TrainingConfig(cutoffs=4, spacing_days=30, backtest_origins=4)
    plan = plan_cutoffs(data_end, cfg, horizon)
    for fold in plan.folds:
        assert fold.training == sorted(fold.training) and len(fold.training) == cfg.cutoffs
        # every training label window [c, c + horizon) is over by the origin: known before it
        assert all(c + dt.timedelta(days=horizon) <= fold.origin for c in fold.training)
        assert label_window_complete(fold.origin, horizon, data_end)  # the origin can be judged


@pytest.mark.parametrize("horizon", [30, 90, 180, 365])
@pytest.mark.parametrize("data_end", [D(2025, 12, 31), D(2025, 7, 14), D(2024, 2, 29)])
def test_the_refit_ends_at_the_latest_complete_cutoff(horizon, data_end):
    cfg = TrainingConfig(cutoffs=4, spacing_days=30)
    plan = plan_cutoffs(data_end, cfg, horizon)
    assert label_window_complete(plan.production[-1], horizon, data_end)
    assert not label_window_complete(plan.production[-1] + dt.timedelta(days=cfg.spacing_days), horizon, data_end)
    assert plan.production[-1] >= plan.latest_origin


def test_both_horizons_share_one_grid_of_cutoffs():
    cfg = TrainingConfig(cutoffs=4, spacing_days=30)
    anchor = latest_complete_cutoff(D(2025, 12, 31), 90)
    churn, clv = (plan_cutoffs(D(2025, 12, 31), cfg, h, anchor) for h in (90, 180))
    assert all((anchor - c).days % 30 == 0 for c in (*churn.cutoffs, *clv.cutoffs))
    assert clv.production[-1] == D(2025, 7, 3)  # 2025-07-03 + 180 days = 2025-12-30, the last one complete


def test_a_configured_validation_cutoff_whose_window_is_not_over_is_refused():
    with pytest.raises(ConfigError, match="too late"):
        plan_cutoffs(D(2025, 12, 31), TrainingConfig(validation_cutoff=D(2025, 11, 1)), 90)


def spine_of(customers: int, cutoffs: int) -> pd.DataFrame:
    ids = [f"c{i}" for i in range(customers)]
    dates = pd.date_range("2025-01-01", periods=cutoffs, freq="MS")
    return pd.DataFrame({"customer_id": ids * cutoffs, "cutoff_date": dates.repeat(customers)})


def test_a_training_sample_keeps_every_cutoff_of_the_customers_it_draws():
    spine = spine_of(5_000, 3)
    sample = sample_customers(spine, 1_200, seed=42)
    assert sample["customer_id"].nunique() == 1_200
    assert (sample.groupby("customer_id").size() == 3).all()  # a customer is in or out, at every cutoff
    again = sample_customers(spine.sample(frac=1, random_state=0), 1_200, seed=42)
    assert set(again["customer_id"]) == set(sample["customer_id"])  # by hash, not by row order
    assert set(sample["customer_id"]) <= set(sample_customers(spine, 2_500, seed=42)["customer_id"])
    assert set(sample_customers(spine, 1_200, seed=7)["customer_id"]) != set(sample["customer_id"])
    assert sample_customers(spine, 5_000, seed=42) is spine


def test_training_max_customers_trains_on_the_same_rows_of_fewer_customers(demo_run):
    """The sample changes who is in the frame, never a kept customer's features or labels."""
    tables = load_tables(demo_run / "data", RUN_AT, None)
    cutoffs = [dt.date(2025, 7, 1), dt.date(2025, 10, 1)]
    whole = build_training_frame(tables, Config(), cutoffs)
    cfg = Config.model_validate({"training": {"max_customers": 1000}})
    sample = build_training_frame(tables, cfg, cutoffs)
    tables.close()
    assert whole["customer_id"].nunique() > 1500 and sample["customer_id"].nunique() == 1000
    kept = whole[whole["customer_id"].isin(sample["customer_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(sample, kept)
