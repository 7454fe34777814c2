"""The model backtest: which cutoffs it judges (complete label windows only), the role of
each cutoff, predicted against realised churn and revenue on the small world of
tests/pipeline/reporting/world.py with stand-in models, the forecast, and no store."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.config import ClvConfig, Config, TrackingConfig
from pipeline.reporting.backtest import backtest_frame, complete_cutoffs, cutoff_role, forecast, run_backtest
from tests.pipeline.reporting.world import CHURN

CLV_60 = Config(churn=CHURN, clv=ClvConfig(horizon_days=60))


class Constant:
    """A stand-in for a champion: the same prediction for every row it is given."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.full(len(features), self.value)


def test_backtest_cutoffs_are_complete_months_and_marked_by_what_training_used():
    # data until 2025-12-31, 90-day windows: the latest complete first-of-month is 2025-10-01
    assert complete_cutoffs(dt.date(2025, 12, 31), 90, dt.date(2026, 1, 1), 3) == [
        dt.date(2025, 8, 1), dt.date(2025, 9, 1), dt.date(2025, 10, 1)]
    assert complete_cutoffs(dt.date(2025, 12, 31), 90, dt.date(2025, 6, 15), 2) == [
        dt.date(2025, 5, 1), dt.date(2025, 6, 1)]
    training, validation = [dt.date(2025, 6, 3), dt.date(2025, 7, 3)], dt.date(2025, 10, 1)
    assert cutoff_role(dt.date(2025, 7, 3), training, validation) == "trained on"
    assert cutoff_role(dt.date(2025, 8, 1), training, validation) == "not trained on"
    assert cutoff_role(dt.date(2025, 10, 1), training, validation) == "validation"
    assert cutoff_role(dt.date(2025, 10, 1), [], None) == "not trained on"


def test_a_cutoff_whose_window_ends_with_the_data_is_complete_and_one_day_later_is_not():
    # 2025-10-01 + 92 days = 2026-01-01, the day after the data ends: complete. 93 days is not.
    assert complete_cutoffs(dt.date(2025, 12, 31), 92, dt.date(2026, 6, 1), 1) == [dt.date(2025, 10, 1)]
    assert complete_cutoffs(dt.date(2025, 12, 31), 93, dt.date(2026, 6, 1), 1) == [dt.date(2025, 9, 1)]
    # Counting back crosses the year.
    assert complete_cutoffs(dt.date(2026, 1, 31), 90, dt.date(2026, 6, 1), 3) == [
        dt.date(2025, 9, 1), dt.date(2025, 10, 1), dt.date(2025, 11, 1)]


def test_backtest_frame_compares_predictions_with_what_happened(tables):
    # Active at 02-01 and 03-01: a and b. 30-day churn: in February both churn (a buys again
    # on 03-05), in March b does. 60-day revenue from 02-01: a's 30 on 03-05; the window
    # from 03-01 ends 04-30, after the data (04-20): not known yet.
    table = backtest_frame(tables, CLV_60, [dt.date(2025, 2, 1), dt.date(2025, 3, 1)], Constant(0.25),
                           Constant(10.0), training=[dt.date(2025, 2, 1)], validation=None)
    assert list(table["cutoff_date"]) == [dt.date(2025, 2, 1), dt.date(2025, 3, 1)]
    assert list(table["role"]) == ["trained on", "not trained on"]
    assert list(table["customers"]) == [2, 2]
    np.testing.assert_allclose(table["predicted_churn_rate"], [0.25, 0.25])
    np.testing.assert_allclose(table["realised_churn_rate"], [1.0, 0.5])
    np.testing.assert_allclose(table["churn_rate_error"], [-0.75, -0.25])
    np.testing.assert_allclose(table["predicted_revenue"], [20.0, 20.0])
    np.testing.assert_allclose(table["realised_revenue"], [30.0, np.nan])
    np.testing.assert_allclose(table["revenue_error_share"], [20 / 30 - 1, np.nan])


def test_forecast_from_the_end_of_the_data_and_from_a_day_nobody_is_active(tables):
    # Active at 04-21 (a purchase in the 60 days before): a (03-05), c (03-10), e (04-10).
    ahead = forecast(tables, CLV_60, dt.date(2025, 4, 21), Constant(0.25), Constant(10.0))
    assert ahead == {"as_of": dt.date(2025, 4, 21), "customers": 3, "clv_horizon_days": 60,
                     "predicted_churn_rate": 0.25, "predicted_revenue": 30.0}
    assert forecast(tables, CLV_60, dt.date(2026, 1, 1), Constant(0.25), Constant(10.0)) == {
        "as_of": dt.date(2026, 1, 1), "customers": 0}


def test_no_tracking_store_means_no_backtest_and_no_store_created(tables, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    store = tmp_path / "mlflow.db"
    cfg = Config(churn=CHURN, tracking=TrackingConfig(uri=f"sqlite:///{store}", artifact_dir=tmp_path / "art"))
    assert run_backtest(tables, cfg, dt.date(2025, 4, 21)) is None
    assert not store.exists()

