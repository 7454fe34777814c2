"""The registry of reason families: each names a kind of churn driver a retention team acts
on together, writes its reason text from a customer's own feature values, and proposes a
default action.

Adding a family means adding one entry to FAMILIES (and naming it as the `family` of the
features that speak for it, in their stage). The config's `scoring.actions.by_reason`
accepts exactly these names.

A writer says only what is on the risky side of a stated reference, in words that name the
reference: the customer's own usual gap or earlier spend, the previous period, the typical
customer of the scored population, or the NPS and CSAT classes. Where a family's
attribution raises the risk but the customer's values are not risky in words (a promoter,
a recent purchase within the usual gap, rising engagement), its writer returns '' and the
next family speaks instead (models/reasons.py). `models/reason_check.py` reads the texts
back and checks them against the features, independently of these writers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ReasonFamily:
    name: str
    # (rows, population) -> one reason text per row of `rows` ('' when none). The population
    # is the whole scored frame: the typical customer is taken from it.
    text: Callable[[pd.DataFrame, pd.DataFrame], pd.Series]
    action: str  # the default recommended action when this family is the strongest driver


# --- the references a reason is measured against (the checker uses the same ones) ---------

RISKY_NPS_CLASSES = ("detractor", "passive")  # the classes of features/surveys.py; promoters are safe
CSAT_SATISFIED = 4  # CSAT 1-5: 4 and 5 are satisfied answers
HIGH_EFFORT = 5  # customer effort score 1-7: 5 or more is a high effort
SPEND_PERIOD_DAYS = 90  # recent spend is the revenue window nearest a quarter


def typical(population: pd.DataFrame, column: str) -> float:
    """The typical customer's value: the median over the scored population (NaN if none)."""
    values = population[column].astype(float)
    return float(values.median()) if values.notna().any() else float("nan")


def spend_window(columns) -> int | None:
    """The revenue window (days) of recent spend: the `revenue_<w>d` feature nearest 90 days."""
    windows = [int(c[len("revenue_"):-1]) for c in columns
               if c.startswith("revenue_") and c.endswith("d") and c[len("revenue_"):-1].isdigit()]
    return min(windows, key=lambda w: (abs(w - SPEND_PERIOD_DAYS), w)) if windows else None


def earlier_spend_per_window(f: pd.DataFrame, window: int) -> pd.Series:
    """The customer's own spend per `window` days before the last `window` days: net revenue
    before the window over the days from the first purchase to the window's start, scaled to
    one window. Known only for customers whose earlier history spans a whole window."""
    earlier_days = f["days_since_first_purchase"].astype(float) - window
    earlier = f["revenue_total"].astype(float) - f[f"revenue_{window}d"].astype(float)
    return (earlier * window / earlier_days).where(earlier_days >= window)


# --- writing ------------------------------------------------------------------------------


def _whole(values: pd.Series) -> pd.Series:
    """Values rounded to whole numbers (as floats, NaN kept): what a text shows."""
    return values.astype(float).round()


def _int_text(values: pd.Series) -> pd.Series:
    return values.astype(float).round().astype("Int64").astype(str)


def _ratio_text(ratio: pd.Series) -> pd.Series:
    """A ratio of 0 or more as a text shows it, to one decimal ("0.4")."""
    tenths = (10 * ratio.astype(float).round(1)).round()
    return _int_text(tenths // 10) + "." + _int_text(tenths % 10)


def _typical_whole(population: pd.DataFrame, column: str, scale: float = 1) -> int | None:
    """The typical customer's value as a text shows it (None when nobody has one)."""
    usual = typical(population, column)
    return int(np.round(scale * usual)) if np.isfinite(usual) else None


def _first(index: pd.Index, *clauses: tuple[pd.Series, pd.Series | str] | None) -> pd.Series:
    """Per row, the text of the first clause whose condition holds ('' when none does);
    a clause of None (its reference is unknown) never holds."""
    out = pd.Series("", index=index, dtype=object)
    for clause in reversed(clauses):
        if clause is not None:
            condition, text = clause
            out = out.mask(condition.fillna(False).astype(bool), text)
    return out


def _lapse(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    days, gap = _whole(f["days_since_last_purchase"]), _whole(f["mean_days_between_purchases"])
    trend = f["purchase_trend"].astype(float).round(1)
    purchases = _whole(f["purchases_total"])
    usual_gap = _typical_whole(population, "mean_days_between_purchases")
    usual_purchases = _typical_whole(population, "purchases_total")
    return _first(
        f.index,
        ((gap >= 1) & (days > gap),
         "no purchase for " + _int_text(days) + " days (usually every " + _int_text(gap) + ")"),
        None if usual_gap is None else (
            gap.isna() & (days > usual_gap),
            "no second purchase in " + _int_text(days) + f" days (typical customer: every {usual_gap} days)"),
        (trend < 1, "purchase trend falling (index " + _ratio_text(trend) + " where 1 is steady)"),
        None if usual_gap is None else (
            gap > usual_gap,
            "buys every " + _int_text(gap) + f" days on average (typical customer: every {usual_gap})"),
        None if usual_purchases is None else (
            purchases < usual_purchases,
            "only " + _int_text(purchases) + f" purchase(s) so far (typical customer: {usual_purchases})"),
    )


def _spend(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    window = spend_window(f.columns)
    if window is None:
        return pd.Series("", index=f.index, dtype=object)
    recent = _whole(f[f"revenue_{window}d"])
    earlier = _whole(earlier_spend_per_window(f, window))
    usual = _typical_whole(population, f"revenue_{window}d")
    spent = "spent " + _int_text(recent) + f" in the last {window} days"
    return _first(
        f.index,
        (recent < earlier, spent + " (down from " + _int_text(earlier) + f" per {window} days before)"),
        None if usual is None else (recent < usual, spent + f" (typical customer: {usual})"),
    )


def _discounts(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    share = _whole(100 * f["discount_revenue_share"].astype(float))
    usual = _typical_whole(population, "discount_revenue_share", scale=100)
    return _first(f.index, None if usual is None else (
        share > usual, _int_text(share) + f"% of purchase value discounted (typical customer: {usual}%)"))


def _refunds(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    count, share = _whole(f["refunds_total"]), _whole(100 * f["refund_share"].astype(float))
    text = _int_text(count) + " refund(s) or return(s)"
    text = text.where(share.isna(), text + " (" + _int_text(share) + "% of purchase value)")
    return _first(f.index, (count > 0, text))


def _engagement(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    days = _whole(f["days_since_last_interaction"])
    trend = f["engagement_trend"].astype(float).round(1)
    total = f["interactions_total"].astype(float)
    usual = _typical_whole(population, "days_since_last_interaction")
    return _first(
        f.index,
        None if usual is None else (
            days > usual,
            "no interaction on any channel for " + _int_text(days) + f" days (typical customer: {usual})"),
        (trend < 1, "engagement trend falling (index " + _ratio_text(trend) + " where 1 is steady)"),
        # silence since ever is news only where the typical customer does interact
        None if usual is None else (days.isna() & (total.isna() | (total == 0)), "no interaction on any channel yet"),
    )


def _support(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    open_tickets, complaints = _whole(f["open_tickets"]), _whole(f["complaints_total"])
    slow = _whole(100 * f["slow_ticket_share"].astype(float))
    csat, effort = _whole(f["csat_last"]), _whole(f["effort_last"])
    return _first(
        f.index,
        (open_tickets > 0, _int_text(open_tickets) + " support ticket(s) open (oldest for "
         + _int_text(f["days_oldest_open_ticket"]) + " days)"),
        (complaints > 0, _int_text(complaints) + " complaint(s) filed"),
        (slow > 0, _int_text(slow) + "% of resolved support tickets were late"),
        (csat < CSAT_SATISFIED,
         "last support satisfaction " + _int_text(csat) + f"/5 (satisfied is {CSAT_SATISFIED} or more)"),
        (effort >= HIGH_EFFORT, "last support effort " + _int_text(effort) + f"/7 (high is {HIGH_EFFORT} or more)"),
    )


def _nps(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    score, change = _whole(f["nps_last"]), _whole(f["nps_change"])
    label = f["nps_class"].astype(object).where(f["nps_class"].notna(), "").astype(str)
    risky = label.isin(RISKY_NPS_CLASSES) & score.notna()
    return _first(
        f.index,
        (risky & (change < 0),
         "NPS down from " + _int_text(score - change) + " to " + _int_text(score) + " (" + label + ")"),
        (risky, "NPS " + _int_text(score) + " (" + label + ")"),
    )


def _subscription(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    downgrades, ended = _whole(f["fee_downgrades"]), _whole(f["subscriptions_ended"])
    active = f["has_active_subscription"].astype(float)
    months = _whole(f["months_on_current_subscription"])
    usual = _typical_whole(population, "months_on_current_subscription")
    return _first(
        f.index,
        (downgrades > 0, "downgraded plan " + _int_text(downgrades) + " time(s)"),
        ((ended > 0) & (active == 0), _int_text(ended) + " subscription(s) ended and none active"),
        None if usual is None else (
            (active == 1) & (months < usual),
            "on the current plan for " + _int_text(months) + f" months (typical customer: {usual})"),
    )


def _profile(f: pd.DataFrame, population: pd.DataFrame) -> pd.Series:
    tenure = _whole(f["days_since_signup"])
    usual = _typical_whole(population, "days_since_signup")
    return _first(
        f.index,
        (f["is_loyalty_member"].astype(float) == 0, "not a loyalty-programme member"),
        None if usual is None else (
            tenure < usual, "customer for " + _int_text(tenure) + f" days (typical customer: {usual})"),
    )


FAMILIES: dict[str, ReasonFamily] = {family.name: family for family in [
    ReasonFamily("purchase_lapse", _lapse, "win-back offer"),
    ReasonFamily("spend", _spend, "personalised offer"),
    ReasonFamily("discounts", _discounts, "value-based offer (not a deeper discount)"),
    ReasonFamily("refunds", _refunds, "product quality follow-up"),
    ReasonFamily("engagement", _engagement, "re-engagement campaign"),
    ReasonFamily("support", _support, "service recovery call"),
    ReasonFamily("nps", _nps, "customer success call"),
    ReasonFamily("subscription", _subscription, "plan review call"),
    ReasonFamily("profile", _profile, "welcome and onboarding journey"),
]}
FAMILY_NAMES = tuple(FAMILIES)
# The lifetime model's outputs (BG/NBD, Gamma-Gamma) summarise purchase behaviour: they speak
# for a purchase lapse. A model input the catalogue does not know has no family and no text.
LIFETIME_FAMILY = "purchase_lapse"
UNKNOWN_FAMILY = "other"
