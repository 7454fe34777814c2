"""Per-customer reasons: the strongest drivers of a customer's churn risk, in plain words.

Contributions (SHAP values of the churn model's log-odds) are summed per reason family,
so that `purchases_30d`, `purchases_90d` and `days_since_last_purchase` make one reason
("no purchase for 94 days (usually every 21)") instead of three. Only families that push
risk up are reasons; the text is written from the customer's own feature values."""

from __future__ import annotations

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


TEXTS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "purchase_lapse": _lapse, "support": _support, "nps": _nps, "engagement": _engagement,
    "discounts": _discounts, "refunds": _refunds, "spend": _spend, "subscription": _subscription,
    "profile": _profile,
}


def family_texts(features: pd.DataFrame, families: list[str]) -> np.ndarray:
    """A (rows x families) array of each family's reason text for each row ('' when the
    family has nothing to say or its features are absent). Vectorised per family."""
    texts = np.full((len(features), len(families)), "", dtype=object)
    for j, family in enumerate(families):
        writer = TEXTS.get(family)
        if writer is None:
            continue
        try:
            texts[:, j] = writer(features).fillna("").to_numpy(dtype=object)
        except KeyError:  # the stage behind this family was skipped (its table is absent)
            continue
    return texts


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
    names = list(by_family.columns)
    values = by_family.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :count]
    texts = family_texts(features.reset_index(drop=True), names)
    rows = np.arange(len(values))
    picked = [np.where(values[rows, order[:, k]] > 0, texts[rows, order[:, k]], "") for k in range(order.shape[1])]
    joined = ["; ".join(p for p in parts if p) for parts in zip(*picked, strict=True)] if picked else [""] * len(rows)
    strongest = values[rows, order[:, 0]] > 0 if len(names) else np.zeros(len(rows), bool)
    main = [names[order[i, 0]] if strongest[i] else None for i in rows]
    return joined, main


def top_reason_agreement(fast: pd.DataFrame, exact: pd.DataFrame, catalog: list[Feature]) -> float:
    """Share of rows whose strongest risk-raising reason family is the same under the fast
    attributions as under exact SHAP (rows where SHAP names one)."""
    fast_families, exact_families = family_contributions(fast, catalog), family_contributions(exact, catalog)
    named = exact_families.max(axis=1) > 0
    if not named.any():
        return float("nan")
    same = fast_families.idxmax(axis=1)[named] == exact_families.idxmax(axis=1)[named]
    return float(same.mean())
