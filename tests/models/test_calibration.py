"""The churn model's Platt calibrator: an overconfident score becomes an honest probability,
and the ranking (every AUC, lift and top-N list) stays the same."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.churn import PlattCalibrator
from models.evaluate import expected_calibration_error


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


def test_scores_of_exactly_zero_or_one_stay_finite():
    calibrator = PlattCalibrator(slope=0.8, intercept=-0.1)
    assert np.isfinite(calibrator.predict(np.array([0.0, 1.0, 0.5]))).all()
