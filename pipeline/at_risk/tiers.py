"""The registry of risk tiers: their names from the highest risk down, the default churn
probability at which each begins, and the colour the summary draws them in.

Adding a tier means adding one entry here; the config (`scoring.tiers`, `scoring.only_tiers`)
reads the names from this registry. The lowest tier takes everyone below the others and has
no threshold of its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RiskTier:
    name: str
    default_threshold: float | None  # in this tier at or above it; None: the lowest tier
    colour: str


RISK_TIERS = (
    RiskTier("high", 0.5, "#c44e52"),
    RiskTier("medium", 0.25, "#dd8452"),
    RiskTier("low", None, "#8c8c8c"),
)
TIERS = tuple(tier.name for tier in RISK_TIERS)
THRESHOLD_TIERS = RISK_TIERS[:-1]  # the tiers that begin at a threshold
LOWEST_TIER = RISK_TIERS[-1].name
TIER_COLOURS = {tier.name: tier.colour for tier in RISK_TIERS}


def assign_tiers(probability: np.ndarray, thresholds: Mapping[str, float]) -> np.ndarray:
    """The highest tier whose threshold the churn probability reaches, else the lowest."""
    probability = np.asarray(probability, dtype=float)
    return np.select([probability >= thresholds[tier.name] for tier in THRESHOLD_TIERS],
                     [tier.name for tier in THRESHOLD_TIERS], LOWEST_TIER)
