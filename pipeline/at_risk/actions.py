"""What the list says about each customer beyond the score: the RFM segment they fall in and
the recommended action for their strongest reason."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.at_risk.tiers import LOWEST_TIER
from pipeline.config import ActionConfig, SegmentRule

UNSEGMENTED = "others"  # the segment of a customer no rule matches


def quintile_score(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """1-5 by quintile of the scored population (5 = best); ties share a score."""
    ranks = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(ranks.fillna(0.0001) * 5).clip(1, 5).astype(int)


def assign_segments(features: pd.DataFrame, rules: list[SegmentRule]) -> pd.Series:
    """RFM-style segment names: the first rule whose recency and frequency ranges match."""
    recency = quintile_score(features["days_since_last_purchase"], higher_is_better=False)
    frequency = quintile_score(features["purchases_365d"] if "purchases_365d" in features
                               else features["purchases_total"], higher_is_better=True)
    segment = pd.Series(UNSEGMENTED, index=features.index, dtype=object)
    unassigned = pd.Series(True, index=features.index)
    for rule in rules:
        match = unassigned & recency.between(*rule.recency) & frequency.between(*rule.frequency)
        segment[match] = rule.name
        unassigned &= ~match
    return segment


def recommend_actions(
    tiers: np.ndarray, main_reason: list[str | None], predicted_clv: np.ndarray,
    is_member: pd.Series | None, actions: ActionConfig,
) -> list[str]:
    """Low risk: no action. Otherwise the action for the strongest reason family, except that
    valuable non-members lapsing from purchases are invited to the loyalty programme."""
    out = []
    for i, tier in enumerate(tiers):
        reason = main_reason[i]
        if tier == LOWEST_TIER:
            out.append(actions.low_risk)
        elif (reason in actions.loyalty_invitation_families and is_member is not None
              and is_member.iloc[i] == 0 and predicted_clv[i] >= actions.loyalty_invitation_min_clv):
            out.append(actions.loyalty_invitation)
        else:
            out.append(actions.by_reason.get(reason or "", actions.default))
    return out


