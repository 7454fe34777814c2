"""Metrics that judge a model against its baselines."""

from __future__ import annotations

import numpy as np

from models.metrics import auc_gain_interval


def test_auc_gain_interval_is_above_zero_only_when_the_model_is_clearly_ahead():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    informative = y + rng.normal(0, 0.8, len(y))
    noise = rng.normal(size=len(y))
    low, high = auc_gain_interval(y, informative, noise, seed=0)
    assert 0 < low < high  # clearly ahead of a random score
    low, high = auc_gain_interval(y, informative, informative + rng.normal(0, 0.01, len(y)), seed=0)
    assert low < 0 < high  # a near copy: the gap is within the noise
    assert auc_gain_interval(y, informative, noise, seed=0) == auc_gain_interval(y, informative, noise, seed=0)
