"""Segments and recommended actions, pinned on hand-made customers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.at_risk.actions import assign_segments, recommend_actions
from pipeline.config import DEFAULT_SEGMENTS, ActionConfig


def test_the_action_follows_the_strongest_reason_and_the_lowest_tier_gets_none():
    tiers = np.array(["high", "medium", "low", "high", "high", "high"])
    main = ["support", "nps", None, "purchase_lapse", "purchase_lapse", None]
    clv = np.array([500.0, 500.0, 500.0, 500.0, 50.0, 500.0])
    member = pd.Series([0, 0, 0, 0, 0, 1])
    actions = recommend_actions(tiers, main, clv, member, ActionConfig())
    assert actions == [
        "service recovery call", "customer success call", "no action",
        "loyalty-programme invitation",  # a valuable non-member who stopped buying
        "win-back offer",  # below the CLV for an invitation
        "personalised offer",  # nothing raises the risk in words: the default
    ]


def test_the_loyalty_invitation_rule_is_configurable():
    cfg = ActionConfig(loyalty_invitation_families=["support"], loyalty_invitation="join the club")
    actions = recommend_actions(np.array(["high", "high"]), ["support", "purchase_lapse"], np.array([900.0, 900.0]),
                                pd.Series([0, 0]), cfg)
    assert actions == ["join the club", "win-back offer"]


def test_segments_are_the_first_matching_rfm_rule():
    # recency: fewer days since the last purchase is better; frequency: more purchases is better
    features = pd.DataFrame({"days_since_last_purchase": [1.0, 2.0, 300.0, 400.0, 3.0],
                             "purchases_365d": [50.0, 1.0, 40.0, 1.0, 20.0]})
    segments = assign_segments(features, DEFAULT_SEGMENTS).tolist()
    assert segments[0] == "champions"  # most recent, most frequent
    assert segments[2] == "at risk"  # long ago, but frequent
    assert segments[3] == "lost"  # long ago and rare
