"""The practice CLV formula is defined once; these figures pin it."""

from __future__ import annotations

import numpy as np
import pytest

from models.practice_formula import expected_lifespan_years, practice_clv


def test_the_lifespan_is_one_over_the_churn_rate_in_horizons():
    # 5% lost every 73 days (a fifth of a year): 20 horizons, 4 years.
    assert expected_lifespan_years(0.05, 73) == pytest.approx(4.0)
    # a 365-day rate is an annual rate: 25% a year, 4 years
    assert expected_lifespan_years(0.25, 365) == pytest.approx(4.0)
    # everybody gone within the horizon: one horizon
    assert expected_lifespan_years(1.0, 73) == pytest.approx(0.2)


def test_lifetime_value_is_aov_times_frequency_times_lifespan():
    # 50 per order, 6 orders a year, 4 years: 1,200.
    assert practice_clv(50.0, 6.0, 4.0) == pytest.approx(1200.0)


def test_the_horizon_caps_the_lifespan():
    np.testing.assert_allclose(practice_clv([50.0, 20.0], [6.0, 2.0], 4.0, horizon_years=1.0), [300.0, 40.0])
    assert practice_clv(50.0, 6.0, 4.0, horizon_years=10.0) == pytest.approx(50 * 6 * 4)
    assert practice_clv(50.0, 6.0, 0.5, horizon_years=3.0) == pytest.approx(150.0)


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_a_churn_rate_outside_zero_to_one_has_no_lifespan(rate):
    with pytest.raises(ValueError):
        expected_lifespan_years(rate, 90)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError):
        expected_lifespan_years(0.1, 0)
    with pytest.raises(ValueError):
        practice_clv(50.0, 6.0, -1.0)
    with pytest.raises(ValueError):
        practice_clv(50.0, 6.0, 0.5, horizon_years=-1.0)
