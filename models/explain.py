"""Per-customer reasons: the strongest drivers of a customer's churn risk, in plain words.

Contributions (SHAP values of the churn model's log-odds) are summed per reason family,
so that `purchases_30d`, `purchases_90d` and `days_since_last_purchase` make one reason
("no purchase for 94 days (usually every 21)") instead of three. Only families that push
risk up are reasons; the text is written from the customer's own feature values."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from features.catalog import Feature
from models.lifetime import LIFETIME_FEATURES

# Families of features a retention team acts on together. Unlisted rfm features fall in
# `purchase_lapse`; other stages form a family of their own.
RFM_FAMILIES = {
    "revenue_": "spend", "average_order_value": "spend", "discount_revenue_share": "discounts",
    "refund": "refunds",
}
STAGE_FAMILIES = {"interactions": "engagement", "support_tickets": "support", "surveys": "nps",
                  "subscriptions": "subscription", "profile": "profile"}


def reason_family(feature: Feature) -> str:
    if feature.stage == "rfm":
        return next((fam for prefix, fam in RFM_FAMILIES.items() if feature.name.startswith(prefix)),
                    "purchase_lapse")
    return STAGE_FAMILIES.get(feature.stage, feature.stage)


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _lapse(row: pd.Series) -> str | None:
    days, gap = _num(row.get("days_since_last_purchase")), _num(row.get("mean_days_between_purchases"))
    if days is None:
        return None
    text = f"no purchase for {days:.0f} days"
    return text + (f" (usually every {gap:.0f})" if gap else "")


def _support(row: pd.Series) -> str | None:
    open_tickets, oldest = _num(row.get("open_tickets")), _num(row.get("days_oldest_open_ticket"))
    if open_tickets:
        return f"{open_tickets:.0f} support ticket(s) open, oldest for {oldest:.0f} days"
    slow, complaints = _num(row.get("slow_ticket_share")), _num(row.get("complaints_total"))
    if complaints:
        return f"{complaints:.0f} complaint(s) filed"
    if slow:
        return f"{slow:.0%} of support tickets resolved slowly"
    csat = _num(row.get("csat_last"))
    return f"last support satisfaction {csat:.0f}/5" if csat is not None else None


def _nps(row: pd.Series) -> str | None:
    score = _num(row.get("nps_last"))
    if score is None:
        return "never answered an NPS survey"
    return f"NPS {score:.0f} ({row.get('nps_class')})"


def _engagement(row: pd.Series) -> str | None:
    days = _num(row.get("days_since_last_interaction"))
    if days is None:
        return "no engagement on any channel"
    trend = _num(row.get("engagement_trend"))
    text = f"no interaction on any channel for {days:.0f} days"
    return text if days > 30 or trend is None else f"engagement falling ({trend:.1f}x the previous period)"


def _discounts(row: pd.Series) -> str | None:
    share = _num(row.get("discount_revenue_share"))
    return f"{share:.0%} of purchases bought on discount" if share is not None else None


def _refunds(row: pd.Series) -> str | None:
    count = _num(row.get("refunds_total"))
    return f"{count:.0f} refund(s) or return(s)" if count else None


def _spend(row: pd.Series) -> str | None:
    recent, total = _num(row.get("revenue_90d")), _num(row.get("revenue_total"))
    return f"spent {recent:,.0f} in the last 90 days ({total:,.0f} in all)" if recent is not None else None


def _subscription(row: pd.Series) -> str | None:
    if _num(row.get("fee_downgrades")):
        return f"downgraded plan {row.get('fee_downgrades'):.0f} time(s)"
    months = _num(row.get("months_on_current_subscription"))
    return f"on the current plan for {months:.0f} months" if months is not None else "no active subscription"


def _profile(row: pd.Series) -> str | None:
    if _num(row.get("is_loyalty_member")) == 0:
        return "not a loyalty-programme member"
    days = _num(row.get("days_since_signup"))
    return f"customer for {days:.0f} days" if days is not None else None


TEXTS: dict[str, Callable[[pd.Series], str | None]] = {
    "purchase_lapse": _lapse, "support": _support, "nps": _nps, "engagement": _engagement,
    "discounts": _discounts, "refunds": _refunds, "spend": _spend, "subscription": _subscription,
    "profile": _profile,
}


def family_contributions(contributions: pd.DataFrame, catalog: list[Feature]) -> pd.DataFrame:
    """Sum per-feature contributions into one column per reason family. The lifetime
    model's outputs summarise purchase behaviour, so they count as a purchase lapse."""
    family_of = {f.name: reason_family(f) for f in catalog} | dict.fromkeys(LIFETIME_FEATURES, "purchase_lapse")
    families = contributions.columns.map(lambda c: family_of.get(c, "other"))
    return contributions.T.groupby(families.to_numpy()).sum().T


def top_reasons(
    features: pd.DataFrame, contributions: pd.DataFrame, catalog: list[Feature], count: int
) -> tuple[list[str], list[str | None]]:
    """For each row: the texts of the `count` families that raise risk most (joined with
    '; '), and the name of the strongest family (None when nothing raises risk)."""
    by_family = family_contributions(contributions, catalog)
    names = by_family.columns.to_numpy()
    order = np.argsort(-by_family.to_numpy(), axis=1)[:, :count]
    texts, main = [], []
    for i, (_, row) in enumerate(features.iterrows()):
        picked = [names[j] for j in order[i] if by_family.iat[i, j] > 0]
        phrases = [t for fam in picked if (t := TEXTS.get(fam, lambda r: None)(row))]
        texts.append("; ".join(phrases))
        main.append(picked[0] if picked else None)
    return texts, main
