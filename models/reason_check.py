"""The reason checker: reads each reason text of a list back and checks it against the
customer's own feature values.

A reason contradicts the features when its numbers disagree with them (the days, the gap,
the ratio, the score are not the customer's, as shown rounded), when it points the safe
way (a purchase within the usual gap, engagement at 1.0x or more, a promoter, spend above
the reference, no open ticket), or when it cannot be read at all. The checker parses the
words and recomputes from the features; it never calls the writers of
models/reason_families.py, so a writer's bug shows up here. It shares only the references
a reason is measured against (the typical customer, earlier spend, the NPS and CSAT
classes), which are defined once, there."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.reason_families import (
    CSAT_SATISFIED,
    HIGH_EFFORT,
    RISKY_NPS_CLASSES,
    earlier_spend_per_window,
    typical,
)

# A check: (the numbers a text states, the customer's features, the population) -> per
# reason, True where the text is true and on the risky side.
Check = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class ReasonPattern:
    family: str
    words: re.Pattern
    check: Check


def _num(said: pd.DataFrame, group: str) -> pd.Series:
    return pd.to_numeric(said[group], errors="coerce")


def _shown(values: pd.Series, decimals: int = 0) -> pd.Series:
    """A feature as a text shows it: rounded half to even."""
    return pd.Series(np.round(values.astype(float).to_numpy(), decimals), index=values.index)


def _typical_shown(population: pd.DataFrame, column: str, scale: float = 1) -> float:
    return float(np.round(scale * typical(population, column)))


def _lapse_own(said, f, population):
    days, gap = _num(said, "days"), _num(said, "gap")
    return (days == _shown(f["days_since_last_purchase"])) & (gap == _shown(f["mean_days_between_purchases"])) \
        & (gap >= 1) & (days > gap)


def _ratio_below_one(feature: str) -> Check:
    def check(said, f, population):
        ratio = _num(said, "ratio")
        return (ratio == _shown(f[feature], 1)) & (ratio < 1)
    return check


def _lapse_single(said, f, population):
    days, usual = _num(said, "days"), _num(said, "usual")
    return f["mean_days_between_purchases"].isna() & (days == _shown(f["days_since_last_purchase"])) \
        & (usual == _typical_shown(population, "mean_days_between_purchases")) & (days > usual)


def _infrequent(said, f, population):
    gap, usual = _num(said, "gap"), _num(said, "usual")
    return (gap == _shown(f["mean_days_between_purchases"])) \
        & (usual == _typical_shown(population, "mean_days_between_purchases")) & (gap > usual)


def _few_purchases(said, f, population):
    count, usual = _num(said, "count"), _num(said, "usual")
    return (count == _shown(f["purchases_total"])) & (usual == _typical_shown(population, "purchases_total")) \
        & (count < usual)


def _spend(reference: str) -> Check:
    def check(said, f, population):
        ok = pd.Series(False, index=said.index)
        for window in _num(said, "window").dropna().unique():
            column, rows = f"revenue_{int(window)}d", _num(said, "window") == window
            if column not in f:
                continue
            spent, than = _num(said, "spent")[rows], _num(said, "than")[rows]
            if reference == "own":
                expected = _shown(earlier_spend_per_window(f[rows], int(window)))
            else:
                expected = pd.Series(_typical_shown(population, column), index=spent.index)
            ok[rows] = (spent == _shown(f.loc[rows, column])) & (than == expected) & (spent < than)
        return ok
    return check


def _discounts(said, f, population):
    share, usual = _num(said, "share"), _num(said, "usual")
    return (share == _shown(100 * f["discount_revenue_share"].astype(float))) \
        & (usual == _typical_shown(population, "discount_revenue_share", 100)) & (share > usual)


def _refunds(said, f, population):
    count, share = _num(said, "count"), _num(said, "share")
    stated_share = share.isna() | (share == _shown(100 * f["refund_share"].astype(float)))
    return (count == _shown(f["refunds_total"])) & (count > 0) & stated_share


def _silent(said, f, population):
    days, usual = _num(said, "days"), _num(said, "usual")
    return (days == _shown(f["days_since_last_interaction"])) \
        & (usual == _typical_shown(population, "days_since_last_interaction")) & (days > usual)


def _never_engaged(said, f, population):
    total = f["interactions_total"].astype(float)
    return f["days_since_last_interaction"].isna() & (total.isna() | (total == 0))


def _open_tickets(said, f, population):
    count, days = _num(said, "count"), _num(said, "days")
    return (count == _shown(f["open_tickets"])) & (count > 0) & (days == _shown(f["days_oldest_open_ticket"]))


def _count_above_zero(feature: str) -> Check:
    def check(said, f, population):
        count = _num(said, "count")
        return (count == _shown(f[feature])) & (count > 0)
    return check


def _late(said, f, population):
    share = _num(said, "share")
    return (share == _shown(100 * f["slow_ticket_share"].astype(float))) & (share > 0)


def _csat(said, f, population):
    score = _num(said, "score")
    return (score == _shown(f["csat_last"])) & (score < CSAT_SATISFIED) & (_num(said, "bar") == CSAT_SATISFIED)


def _effort(said, f, population):
    score = _num(said, "score")
    return (score == _shown(f["effort_last"])) & (score >= HIGH_EFFORT) & (_num(said, "bar") == HIGH_EFFORT)


def _nps(said, f, population):
    score, label = _num(said, "score"), said["label"]
    feature_label = f["nps_class"].astype(object).astype(str)
    ok = (score == _shown(f["nps_last"])) & (label == feature_label) & label.isin(RISKY_NPS_CLASSES)
    if "before" in said:
        before = _num(said, "before")
        ok &= (before == score - _shown(f["nps_change"])) & (before > score)
    return ok


def _ended(said, f, population):
    count = _num(said, "count")
    return (count == _shown(f["subscriptions_ended"])) & (count > 0) & (f["has_active_subscription"].astype(float) == 0)


def _short_plan(said, f, population):
    months, usual = _num(said, "months"), _num(said, "usual")
    return (f["has_active_subscription"].astype(float) == 1) & (months == _shown(f["months_on_current_subscription"])) \
        & (usual == _typical_shown(population, "months_on_current_subscription")) & (months < usual)


def _non_member(said, f, population):
    return f["is_loyalty_member"].astype(float) == 0


def _short_tenure(said, f, population):
    days, usual = _num(said, "days"), _num(said, "usual")
    return (days == _shown(f["days_since_signup"])) & (usual == _typical_shown(population, "days_since_signup")) \
        & (days < usual)


AMOUNT, RATIO = r"-?\d+", r"\d+\.\d"  # a whole amount (spend can be net negative); a ratio to 1 decimal
PATTERNS = [ReasonPattern(family, re.compile(words), check) for family, words, check in [
    ("purchase_lapse", r"no purchase for (?P<days>\d+) days \(usually every (?P<gap>\d+)\)", _lapse_own),
    ("purchase_lapse", rf"purchase trend falling \(index (?P<ratio>{RATIO}) where 1 is steady\)",
     _ratio_below_one("purchase_trend")),
    ("purchase_lapse", r"no second purchase in (?P<days>\d+) days \(typical customer: every (?P<usual>\d+) days\)",
     _lapse_single),
    ("purchase_lapse", r"buys every (?P<gap>\d+) days on average \(typical customer: every (?P<usual>\d+)\)",
     _infrequent),
    ("purchase_lapse", r"only (?P<count>\d+) purchase\(s\) so far \(typical customer: (?P<usual>\d+)\)",
     _few_purchases),
    ("spend", rf"spent (?P<spent>{AMOUNT}) in the last (?P<window>\d+) days \(down from (?P<than>{AMOUNT}) per "
              r"(?P=window) days before\)", _spend("own")),
    ("spend", rf"spent (?P<spent>{AMOUNT}) in the last (?P<window>\d+) days \(typical customer: (?P<than>{AMOUNT})\)",
     _spend("population")),
    ("discounts", r"(?P<share>\d+)% of purchase value discounted \(typical customer: (?P<usual>\d+)%\)", _discounts),
    ("refunds", r"(?P<count>\d+) refund\(s\) or return\(s\)(?: \((?P<share>\d+)% of purchase value\))?", _refunds),
    ("engagement", r"no interaction on any channel for (?P<days>\d+) days \(typical customer: (?P<usual>\d+)\)",
     _silent),
    ("engagement", rf"engagement trend falling \(index (?P<ratio>{RATIO}) where 1 is steady\)",
     _ratio_below_one("engagement_trend")),
    ("engagement", r"no interaction on any channel yet", _never_engaged),
    ("support", r"(?P<count>\d+) support ticket\(s\) open \(oldest for (?P<days>\d+) days\)", _open_tickets),
    ("support", r"(?P<count>\d+) complaint\(s\) filed", _count_above_zero("complaints_total")),
    ("support", r"(?P<share>\d+)% of resolved support tickets were late", _late),
    ("support", r"last support satisfaction (?P<score>\d+)/5 \(satisfied is (?P<bar>\d+) or more\)", _csat),
    ("support", r"last support effort (?P<score>\d+)/7 \(high is (?P<bar>\d+) or more\)", _effort),
    ("nps", r"NPS (?P<score>\d+) \((?P<label>[a-z]+)\)", _nps),
    ("nps", r"NPS down from (?P<before>\d+) to (?P<score>\d+) \((?P<label>[a-z]+)\)", _nps),
    ("subscription", r"downgraded plan (?P<count>\d+) time\(s\)", _count_above_zero("fee_downgrades")),
    ("subscription", r"(?P<count>\d+) subscription\(s\) ended and none active", _ended),
    ("subscription", r"on the current plan for (?P<months>\d+) months \(typical customer: (?P<usual>\d+)\)",
     _short_plan),
    ("profile", r"not a loyalty-programme member", _non_member),
    ("profile", r"customer for (?P<days>\d+) days \(typical customer: (?P<usual>\d+)\)", _short_tenure),
]]


def find_contradictions(texts: Sequence[str], rows: pd.DataFrame, population: pd.DataFrame | None = None
                        ) -> pd.DataFrame:
    """Every reason of `texts` (one '; '-joined string per row of `rows`) that contradicts
    that row's features: one row each with the row's position, the reason, and its family
    (None when the text cannot be read). `population` (default: `rows`) is the scored frame
    the typical customer comes from."""
    population = rows if population is None else population
    features = rows.reset_index(drop=True)
    reasons = pd.Series(list(texts), dtype=object).fillna("").astype(str).str.split("; ").explode()
    reasons = reasons[reasons.str.len() > 0]
    position = reasons.index.to_numpy()
    reasons = reasons.reset_index(drop=True)
    family = np.full(len(reasons), None, dtype=object)
    true = pd.Series(False, index=reasons.index)
    for pattern in PATTERNS:
        unread = reasons[pd.isna(family)]
        read = unread.str.fullmatch(pattern.words)
        if not read.any():
            continue
        at = read[read].index
        said = unread[at].str.extract(pattern.words) if pattern.words.groups else pd.DataFrame(index=at)
        family[at] = pattern.family
        on = features.iloc[position[at]].set_index(at)
        try:
            true[at] = pattern.check(said.loc[at], on, population).fillna(False).astype(bool)
        except KeyError:  # a reason about features this frame does not have
            true[at] = False
    wrong = ~true
    return pd.DataFrame({"row": position[wrong.to_numpy()], "reason": reasons[wrong].to_numpy(),
                         "family": pd.Series(family[wrong.to_numpy()], dtype=object)})


def count_contradictions(texts: Sequence[str], rows: pd.DataFrame, population: pd.DataFrame | None = None) -> int:
    """How many reasons of `texts` contradict their row's features (find_contradictions)."""
    return len(find_contradictions(texts, rows, population))
