"""Calibration on out-of-time predictions: an overconfident score becomes an honest
probability and the ranking (every AUC, lift and top-N list) stays the same; a CLV scale
matches the realised total."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.errors import ModelDataError
from models.forward.calibration import PlattCalibrator, RevenueScale
from models.forward.scorers import clipped_logit
from models.metrics import expected_calibration_error


def overconfident_world(rows: int, seed: int, base: float = -0.5) -> tuple[np.ndarray, pd.Series]:
    """A booster that is twice too sure of itself, with too high a base rate: its
    log-odds score is 2 x true log-odds + 0.5."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(base, 1.5, rows)
    churned = pd.Series(rng.random(rows) < 1 / (1 + np.exp(-true_log_odds)), dtype=int)
    return 2 * (true_log_odds - base) + 2 * (-0.5) + 0.5, churned


def test_an_overconfident_score_is_calibrated_on_held_out_customers():
    raw, churned = overconfident_world(3_000, seed=1)
    calibrator = PlattCalibrator.fit(raw, churned)
    assert abs(calibrator.slope - 0.5) < 0.1 and abs(calibrator.intercept + 0.25) < 0.15  # undoes 2x + 0.5

    new_raw, new_churned = overconfident_world(3_000, seed=2)
    calibrated = calibrator.predict(new_raw)
    assert expected_calibration_error(new_churned, 1 / (1 + np.exp(-new_raw))) > 0.08
    assert expected_calibration_error(new_churned, calibrated) < 0.03
    assert abs(calibrated.mean() - new_churned.mean()) < 0.02


def test_calibration_keeps_the_ranking():
    raw, churned = overconfident_world(2_000, seed=3)
    calibrated = PlattCalibrator.fit(raw, churned).predict(raw)
    assert np.array_equal(np.argsort(raw, kind="stable"), np.argsort(calibrated, kind="stable"))
    assert roc_auc_score(churned, calibrated) == roc_auc_score(churned, raw)
    assert np.all((calibrated > 0) & (calibrated < 1))


def test_scores_of_exactly_zero_or_one_can_be_calibrated():
    raw, churned = overconfident_world(1_000, seed=4)
    probability = 1 / (1 + np.exp(-raw))
    probability[:5], probability[5:10] = 0.0, 1.0  # a booster's probability can round to either end
    link = clipped_logit(probability)
    calibrated = PlattCalibrator.fit(link, churned).predict(link)
    assert np.isfinite(calibrated).all() and np.all((calibrated >= 0) & (calibrated <= 1))


def test_a_score_that_ranks_churn_backwards_is_refused():
    raw, churned = overconfident_world(1_000, seed=5)
    with pytest.raises(ModelDataError, match="does not rise with the model's score"):
        PlattCalibrator.fit(-raw, churned)


def test_a_calibration_cutoff_where_nobody_churns_is_refused():
    with pytest.raises(ModelDataError, match="all have the same churn label"):
        PlattCalibrator.fit(np.linspace(0.1, 0.9, 50), pd.Series(np.zeros(50, dtype=int)))


def test_a_revenue_scale_matches_the_realised_total_within_bounds():
    predicted, revenue = np.array([10.0, 20.0, 0.0, 70.0]), np.array([20.0, 30.0, 50.0, 100.0])
    scale = RevenueScale.fit(predicted, revenue)
    assert scale.factor == pytest.approx(2.0) and scale.predict(predicted).sum() == pytest.approx(revenue.sum())
    assert RevenueScale.fit(predicted, revenue * 100).factor == 5.0  # a jump of 200x is the data, not the model
    assert RevenueScale.fit(np.zeros(3), revenue[:3]).factor == 1.0
