"""The practice-formula baseline of a training run, pinned on hand-made customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.evaluation import Horizons, practice_formula_clv

HORIZONS = Horizons(churn_days=90, clv_days=180)


def split(churned_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A fold's training rows (only their churn rate matters) and its origin's customers."""
    fit = pd.DataFrame({"is_churned": [1] * int(100 * churned_share) + [0] * (100 - int(100 * churned_share))})
    origin = pd.DataFrame({
        "days_since_first_purchase": [730.0, 73.0, 10.0],  # a known year, a fifth of one, under 30 days
        "purchases_365d": [12.0, 2.0, 1.0],
        "average_order_value": [50.0, 20.0, np.nan],
    })
    return fit, origin


def test_a_low_churn_rate_earns_the_whole_horizon():
    # 20% per 90 days: a lifespan of 5 horizons (1.23 years), longer than the 180-day horizon,
    # so each customer is worth aov x purchases per year x 180/365.
    found = practice_formula_clv(*split(0.2), HORIZONS)
    per_year = np.array([12.0, 2.0 / (73 / 365), 1.0 / (30 / 365)])  # tenure counts at least 30 days, at most a year
    np.testing.assert_allclose(found, np.array([50.0, 20.0, 0.0]) * per_year * 180 / 365)


def test_a_high_churn_rate_shortens_the_lifespan_below_the_horizon():
    # 80% per 90 days: a customer stays 1.25 horizons = 112.5 days, less than the 180-day horizon.
    found = practice_formula_clv(*split(0.8), HORIZONS)
    assert found[0] == pytest.approx(50.0 * 12.0 * 112.5 / 365)
