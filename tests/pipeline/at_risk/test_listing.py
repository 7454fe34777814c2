"""The at-risk list: value at risk, order and rank, pinned on a hand-made scored frame."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.at_risk.listing import AT_RISK_COLUMNS, build_at_risk_list, value_at_risk
from pipeline.config import ScoringConfig


def test_value_at_risk_multiplies_the_figures_as_the_list_shows_them():
    # 0.123456 is shown as 0.1235 and 100.004 as 100.0: 0.1235 x 100.0 = 12.35
    np.testing.assert_array_equal(value_at_risk([0.123456, 0.5, 0.0], [100.004, 20.0, 99.0]), [12.35, 10.0, 0.0])


def scored() -> pd.DataFrame:
    probability, clv = np.array([0.2, 0.9, 0.5, 0.5]), np.array([200.0, 10.0, 40.0, 40.0])
    return pd.DataFrame({
        "customer_id": ["a", "b", "c", "d"], "churn_probability": probability, "risk_tier": ["low", "high", "high", "high"],
        "predicted_clv": clv, "value_at_risk": value_at_risk(probability, clv),
        "top_reasons": ["", "r", "r", "r"], "segment": ["loyal"] * 4, "recommended_action": ["x"] * 4,
    })


def test_the_list_is_sorted_by_value_at_risk_and_every_row_multiplies_out():
    listed = build_at_risk_list(scored(), dt.date(2026, 1, 1), "3", "4", pd.DataFrame({"customer_id": ["a"]}),
                                ScoringConfig())
    assert list(listed.columns) == AT_RISK_COLUMNS
    assert listed["customer_id"].tolist() == ["a", "c", "d", "b"]  # ties broken by customer id
    assert listed["rank"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(listed["value_at_risk"], (listed["churn_probability"] * listed["predicted_clv"]).round(2))


def test_top_n_and_only_tiers_cut_the_list():
    cfg = ScoringConfig(only_tiers=["high"], top_n=2)
    listed = build_at_risk_list(scored(), dt.date(2026, 1, 1), "3", "4", pd.DataFrame({"customer_id": pd.Series([], dtype=str)}), cfg)
    assert listed["customer_id"].tolist() == ["c", "d"]
