"""The practice-formula baseline of a training run, pinned on hand-made customers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.model_input import Split
from models.evaluation import practice_formula_clv


def split(churned_share: float) -> Split:
    fit = pd.DataFrame({"is_churned": [1] * int(100 * churned_share) + [0] * (100 - int(100 * churned_share))})
    valid = pd.DataFrame({
        "days_since_first_purchase": [730.0, 73.0, 10.0],  # a known year, a fifth of one, under 30 days
        "purchases_365d": [12.0, 2.0, 1.0],
        "average_order_value": [50.0, 20.0, np.nan],
    })
    return Split(fit, fit.head(0), valid)


def test_a_low_churn_rate_earns_the_whole_horizon():
    # 20% per 90 days: a lifespan of 5 horizons (1.23 years), longer than the 180-day horizon,
    # so each customer is worth aov x purchases per year x 180/365.
    lifetime = SimpleNamespace(churn_horizon_days=90, clv_horizon_days=180)
    found = practice_formula_clv(split(0.2), lifetime)
    per_year = np.array([12.0, 2.0 / (73 / 365), 1.0 / (30 / 365)])  # tenure counts at least 30 days, at most a year
    np.testing.assert_allclose(found, np.array([50.0, 20.0, 0.0]) * per_year * 180 / 365)


def test_a_high_churn_rate_shortens_the_lifespan_below_the_horizon():
    # 80% per 90 days: a customer stays 1.25 horizons = 112.5 days, less than the 180-day horizon.
    lifetime = SimpleNamespace(churn_horizon_days=90, clv_horizon_days=180)
    found = practice_formula_clv(split(0.8), lifetime)
    assert found[0] == pytest.approx(50.0 * 12.0 * 112.5 / 365)
