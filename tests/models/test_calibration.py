"""The churn model's Platt calibrator: an overconfident score becomes an honest probability,
and the ranking (every AUC, lift and top-N list) stays the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from models.churn import PlattCalibrator
from models.errors import ModelDataError
from models.metrics import expected_calibration_error


def overconfident_world(rows: int, seed: int) -> tuple[np.ndarray, pd.Series]:
    """A booster that is twice too sure of itself, with too high a base rate: its
    probability is sigmoid(2 x true log-odds + 0.5)."""
    rng = np.random.default_rng(seed)
    true_log_odds = rng.normal(-0.5, 1.5, rows)
    churned = pd.Series(rng.random(rows) < 1 / (1 + np.exp(-true_log_odds)), dtype=int)
    return 1 / (1 + np.exp(-(2 * true_log_odds + 0.5))), churned


def test_an_overconfident_score_is_calibrated_on_held_out_customers():
    raw, churned = overconfident_world(3_000, seed=1)
    calibrator = PlattCalibrator.fit(raw, churned)
    assert abs(calibrator.slope - 0.5) < 0.1 and abs(calibrator.intercept + 0.25) < 0.15  # undoes 2x + 0.5

    new_raw, new_churned = overconfident_world(3_000, seed=2)
    calibrated = calibrator.predict(new_raw)
    assert expected_calibration_error(new_churned, new_raw) > 0.08
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
    raw[:5], raw[5:10] = 0.0, 1.0  # a booster's probability can round to either end
    calibrated = PlattCalibrator.fit(raw, churned).predict(raw)
    assert np.isfinite(calibrated).all() and np.all((calibrated >= 0) & (calibrated <= 1))


def test_a_score_that_ranks_churn_backwards_is_refused():
    raw, churned = overconfident_world(1_000, seed=5)
    with pytest.raises(ModelDataError, match="does not rise with the model's score"):
        PlattCalibrator.fit(1 - raw, churned)


def test_a_calibration_cutoff_where_nobody_churns_is_refused():
    with pytest.raises(ModelDataError, match="all have the same churn label"):
        PlattCalibrator.fit(np.linspace(0.1, 0.9, 50), pd.Series(np.zeros(50, dtype=int)))
