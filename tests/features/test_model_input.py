"""The model-input layer: the latest complete cutoff and the cutoff plan, pinned by dates."""

from __future__ import annotations

import datetime as dt

import pytest

from features.model_input import plan_cutoffs
from features.population import label_window_complete, latest_complete_cutoff
from pipeline.config import TrainingConfig
from pipeline.errors import ConfigError

D = dt.date


def test_a_label_window_is_complete_once_it_ends_by_the_last_day_of_data():
    # [2025-10-03, 2026-01-01) ends with 2025-12-31, the last day with events
    assert label_window_complete(D(2025, 10, 3), 90, D(2025, 12, 31))
    assert not label_window_complete(D(2025, 10, 4), 90, D(2025, 12, 31))


def test_the_latest_complete_cutoff_is_a_first_of_month():
    assert latest_complete_cutoff(D(2025, 12, 31), 90) == D(2025, 10, 1)
    # the window of 2025-10-01 needs data until 2025-12-29: one day short, so September
    assert latest_complete_cutoff(D(2025, 12, 28), 90) == D(2025, 9, 1)
    assert latest_complete_cutoff(D(2025, 12, 29), 90) == D(2025, 10, 1)
    # never later than `until`
    assert latest_complete_cutoff(D(2025, 12, 31), 90, until=D(2025, 6, 15)) == D(2025, 6, 1)
    for horizon in (30, 90, 180, 365):
        cutoff = latest_complete_cutoff(D(2025, 12, 31), horizon)
        assert label_window_complete(cutoff, horizon, D(2025, 12, 31))


def test_training_cutoffs_end_a_horizon_before_validation():
    plan = plan_cutoffs(D(2025, 12, 31), TrainingConfig(cutoffs=3, spacing_days=30), 90)
    assert plan.validation == D(2025, 10, 1)
    assert plan.training == [D(2025, 5, 4), D(2025, 6, 3), D(2025, 7, 3)]
    assert plan.holdout == D(2025, 7, 3) and plan.fit == [D(2025, 5, 4), D(2025, 6, 3)]
    assert plan.as_dict() == {"training": ["2025-05-04", "2025-06-03", "2025-07-03"], "validation": "2025-10-01"}


def test_a_configured_validation_cutoff_whose_window_is_not_over_is_refused():
    with pytest.raises(ConfigError, match="too late"):
        plan_cutoffs(D(2025, 12, 31), TrainingConfig(validation_cutoff=D(2025, 11, 1)), 90)
