"""The at-risk list: the product's output, a stable contract for CRM imports and Excel.

Columns, in this order (version AT_RISK_VERSION; documented in the README):
customer_id, as_of_date, churn_probability, risk_tier, predicted_clv, value_at_risk, rank,
top_reasons, segment, recommended_action, churn_model_version, clv_model_version, then the
configured passthrough columns from `customers`."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.config import ActionConfig, ScoringConfig, SegmentRule, TierConfig

AT_RISK_VERSION = "1.0"
AT_RISK_COLUMNS = [
    "customer_id", "as_of_date", "churn_probability", "risk_tier", "predicted_clv", "value_at_risk",
    "rank", "top_reasons", "segment", "recommended_action", "churn_model_version", "clv_model_version",
]
TIERS = ["high", "medium", "low"]


def assign_tiers(probability: np.ndarray, tiers: TierConfig) -> np.ndarray:
    return np.select([probability >= tiers.high, probability >= tiers.medium], ["high", "medium"], "low")


def quintile_score(values: pd.Series, higher_is_better: bool) -> pd.Series:
    """1-5 by quintile of the scored population (5 = best); ties share a score."""
    ranks = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(ranks.fillna(0.0001) * 5).clip(1, 5).astype(int)


def assign_segments(features: pd.DataFrame, rules: list[SegmentRule]) -> pd.Series:
    """RFM-style segment names: the first rule whose recency and frequency ranges match."""
    recency = quintile_score(features["days_since_last_purchase"], higher_is_better=False)
    frequency = quintile_score(features["purchases_365d"] if "purchases_365d" in features
                               else features["purchases_total"], higher_is_better=True)
    segment = pd.Series("others", index=features.index, dtype=object)
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
        if tier == "low":
            out.append(actions.low_risk)
        elif (reason in ("purchase_lapse", "profile") and is_member is not None
              and is_member.iloc[i] == 0 and predicted_clv[i] >= actions.loyalty_invitation_min_clv):
            out.append("loyalty-programme invitation")
        else:
            out.append(actions.by_reason.get(reason or "", actions.default))
    return out


def build_at_risk_list(
    scored: pd.DataFrame, as_of: dt.date, churn_version: str, clv_version: str,
    passthrough: pd.DataFrame, cfg: ScoringConfig,
) -> pd.DataFrame:
    """`scored` holds customer_id, churn_probability, predicted_clv, top_reasons, segment,
    recommended_action, risk_tier; return the list in contract order, sorted by value at risk."""
    out = scored.copy()
    out["as_of_date"] = as_of.isoformat()
    out["churn_probability"] = out["churn_probability"].round(4)
    out["predicted_clv"] = out["predicted_clv"].round(2)
    out["value_at_risk"] = (out["churn_probability"] * out["predicted_clv"]).round(2)
    out = out.sort_values(["value_at_risk", "churn_probability", "customer_id"],
                          ascending=[False, False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out["churn_model_version"], out["clv_model_version"] = churn_version, clv_version
    out = out[AT_RISK_COLUMNS].merge(passthrough, how="left", on="customer_id")
    if cfg.only_tiers:
        out = out[out["risk_tier"].isin(cfg.only_tiers)]
    if cfg.top_n:
        out = out.head(cfg.top_n)
    return out.reset_index(drop=True)


def write_at_risk_files(at_risk: pd.DataFrame, folder, cfg: ScoringConfig) -> dict[str, str]:
    """Write the list in each configured format into `folder`; return {format: file name}."""
    written = {}
    if "csv" in cfg.formats:
        at_risk.to_csv(
            folder / "at_risk.csv", index=False, sep=cfg.csv.delimiter, decimal=cfg.csv.decimal,
            encoding="utf-8-sig" if cfg.csv.excel_bom else "utf-8", lineterminator="\n",
        )
        written["csv"] = "at_risk.csv"
    if "parquet" in cfg.formats:
        at_risk.to_parquet(folder / "at_risk.parquet", index=False)
        written["parquet"] = "at_risk.parquet"
    return written
