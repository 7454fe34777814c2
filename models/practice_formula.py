"""The retention-practice CLV formula, defined once: average order value x purchases per
year x expected lifespan in years.

The lifespan is the mean of a geometric lifetime: when a share `rate` of the customers
leaves in every horizon, a customer stays 1 / rate horizons on average (a monthly churn of
5% gives 20 months). The KPI report uses the formula for the whole lifetime; the model
evaluation uses it as a baseline capped at the CLV horizon, to be comparable with revenue
over that horizon."""

from __future__ import annotations

import numpy as np

DAYS_PER_YEAR = 365


def expected_lifespan_years(horizon_churn_rate: float, horizon_days: int) -> float:
    """Expected remaining lifetime, in years, of a customer when `horizon_churn_rate` of the
    customers churn in every `horizon_days`: 1 / rate horizons."""
    if not 0.0 < horizon_churn_rate <= 1.0:
        raise ValueError("horizon_churn_rate must be in (0, 1]: with no churn the lifespan is unbounded")
    if horizon_days <= 0:
        raise ValueError("horizon_days must be positive")
    return horizon_days / DAYS_PER_YEAR / horizon_churn_rate


def practice_clv(average_order_value, purchases_per_year, lifespan_years: float,
                 horizon_years: float | None = None) -> np.ndarray:
    """aov x purchases per year x lifespan in years, per customer (or for an average
    customer); the lifespan is capped at `horizon_years` when given."""
    if lifespan_years < 0:
        raise ValueError("lifespan_years must be non-negative")
    years = lifespan_years
    if horizon_years is not None:
        if horizon_years < 0:
            raise ValueError("horizon_years must be non-negative")
        years = min(horizon_years, years)
    return np.asarray(average_order_value, dtype=float) * np.asarray(purchases_per_year, dtype=float) * years
