"""The registry of reason families: each names a kind of churn driver a retention team acts
on together, writes its reason text from a customer's own feature values, and proposes a
default action.

Adding a family means adding one entry to FAMILIES (and naming it as the `family` of the
features that speak for it, in their stage). The config's `scoring.actions.by_reason`
accepts exactly these names. A writer returns '' where the family has nothing true to say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ReasonFamily:
    name: str
    text: Callable[[pd.DataFrame], pd.Series]  # one reason text per row ('' when none)
    action: str  # the default recommended action when this family is the strongest driver


def _days(values: pd.Series) -> pd.Series:
    return values.round().astype("Int64").astype(str)


def _lapse(f: pd.DataFrame) -> pd.Series:
    days, gap = f["days_since_last_purchase"], f.get("mean_days_between_purchases")
    text = "no purchase for " + _days(days) + " days"
    if gap is not None:
        text = text.where(gap.isna() | (gap <= 0), text + " (usually every " + _days(gap) + ")")
    return text.where(days.notna(), "")


def _support(f: pd.DataFrame) -> pd.Series:
    text = pd.Series("", index=f.index)
    if "csat_last" in f:
        text = text.where(f["csat_last"].isna(), "last support satisfaction " + _days(f["csat_last"]) + "/5")
    if "slow_ticket_share" in f:
        slow = f["slow_ticket_share"].fillna(0) > 0
        text = text.where(~slow, (100 * f["slow_ticket_share"]).round().astype("Int64").astype(str)
                          + "% of support tickets resolved slowly")
    if "complaints_total" in f:
        text = text.where(f["complaints_total"].fillna(0) == 0, _days(f["complaints_total"]) + " complaint(s) filed")
    if "open_tickets" in f:
        open_text = (_days(f["open_tickets"]) + " support ticket(s) open, oldest for "
                     + _days(f["days_oldest_open_ticket"]) + " days")
        text = text.where(f["open_tickets"].fillna(0) == 0, open_text)
    return text


def _nps(f: pd.DataFrame) -> pd.Series:
    score = f["nps_last"]
    return ("NPS " + _days(score) + " (" + f["nps_class"].astype(str) + ")").where(
        score.notna(), "never answered an NPS survey")


def _engagement(f: pd.DataFrame) -> pd.Series:
    days = f["days_since_last_interaction"]
    silent = "no interaction on any channel for " + _days(days) + " days"
    falling = "engagement falling (" + f["engagement_trend"].round(1).astype(str) + "x the previous period)"
    return silent.where(days > 30, falling).where(days.notna(), "no engagement on any channel")


def _discounts(f: pd.DataFrame) -> pd.Series:
    share = f["discount_revenue_share"]
    return ((100 * share).round().astype("Int64").astype(str) + "% of purchases bought on discount").where(
        share.notna(), "")


def _refunds(f: pd.DataFrame) -> pd.Series:
    count = f["refunds_total"]
    return (_days(count) + " refund(s) or return(s)").where(count.fillna(0) > 0, "")


def _spend(f: pd.DataFrame) -> pd.Series:
    recent, total = f["revenue_90d"], f["revenue_total"]
    return ("spent " + recent.round().astype("Int64").astype(str) + " in the last 90 days ("
            + total.round().astype("Int64").astype(str) + " in all)").where(recent.notna(), "")


def _subscription(f: pd.DataFrame) -> pd.Series:
    months = f["months_on_current_subscription"]
    text = ("on the current plan for " + _days(months) + " months").where(months.notna(), "no active subscription")
    return text.where(f["fee_downgrades"].fillna(0) == 0, "downgraded plan " + _days(f["fee_downgrades"]) + " time(s)")


def _profile(f: pd.DataFrame) -> pd.Series:
    tenure = ("customer for " + _days(f["days_since_signup"]) + " days").where(f["days_since_signup"].notna(), "")
    return tenure.where(f["is_loyalty_member"] != 0, "not a loyalty-programme member")




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
