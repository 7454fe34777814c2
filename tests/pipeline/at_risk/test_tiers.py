"""Risk tiers come from one registry: thresholds, config keys and the lowest tier."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.at_risk.tiers import LOWEST_TIER, RISK_TIERS, TIERS, assign_tiers
from pipeline.config import TierConfig, parse_config
from pipeline.errors import ConfigError


def test_a_customer_is_in_the_highest_tier_whose_threshold_they_reach():
    tiers = assign_tiers(np.array([0.9, 0.5, 0.49, 0.25, 0.1, 0.0]), TierConfig())
    assert tiers.tolist() == ["high", "high", "medium", "medium", "low", "low"]


def test_the_config_has_one_threshold_per_tier_above_the_lowest():
    assert TIERS == ("high", "medium", "low") and LOWEST_TIER == "low"
    defaults = TierConfig()
    assert {t.name: defaults[t.name] for t in RISK_TIERS[:-1]} == {"high": 0.5, "medium": 0.25}
    assert parse_config({"scoring": {"tiers": {"high": 0.7}}}).scoring.tiers["medium"] == 0.25


@pytest.mark.parametrize("tiers, message", [
    ({"high": 0.2, "medium": 0.4}, "tier threshold medium must not exceed high"),
    ({"urgent": 0.9}, "scoring.tiers.urgent: unknown key"),
    ({"low": 0.1}, "scoring.tiers.low: unknown key"),  # the lowest tier takes the rest
])
def test_bad_tier_settings_are_refused(tiers, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"scoring": {"tiers": tiers}})


def test_only_tiers_names_registered_tiers():
    with pytest.raises(ConfigError, match="only_tiers"):
        parse_config({"scoring": {"only_tiers": ["hot"]}})
    assert parse_config({"scoring": {"only_tiers": ["high"]}}).scoring.only_tiers == ["high"]
