"""The at-risk list's columns, order and files: a stable contract for CRM imports and Excel.

Columns, in this order (version AT_RISK_VERSION; documented in the README):
customer_id, as_of_date, churn_probability, risk_tier, predicted_clv, value_at_risk, rank,
top_reasons, segment, recommended_action, churn_model_version, clv_model_version, then the
configured passthrough columns from `customers`."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.config import ScoringConfig

AT_RISK_VERSION = "1.0"
AT_RISK_COLUMNS = [
    "customer_id", "as_of_date", "churn_probability", "risk_tier", "predicted_clv", "value_at_risk",
    "rank", "top_reasons", "segment", "recommended_action", "churn_model_version", "clv_model_version",
]
PROBABILITY_DECIMALS, MONEY_DECIMALS = 4, 2


def value_at_risk(churn_probability, predicted_clv) -> np.ndarray:
    """The value at risk of a customer: churn probability x predicted CLV, from the figures
    as the list shows them (probability to 4 decimals, CLV to the cent), to the cent, so that
    every row of the list multiplies out and the totals add up."""
    shown_probability = np.round(np.asarray(churn_probability, dtype=float), PROBABILITY_DECIMALS)
    shown_clv = np.round(np.asarray(predicted_clv, dtype=float), MONEY_DECIMALS)
    return np.round(shown_probability * shown_clv, MONEY_DECIMALS)


def build_at_risk_list(
    scored: pd.DataFrame, as_of: dt.date, churn_version: str, clv_version: str,
    passthrough: pd.DataFrame, cfg: ScoringConfig,
) -> pd.DataFrame:
    """`scored` holds customer_id, churn_probability, predicted_clv, value_at_risk,
    top_reasons, segment, recommended_action, risk_tier; return the list in contract order,
    sorted by value at risk."""
    out = scored.copy()
    out["as_of_date"] = as_of.isoformat()
    out["churn_probability"] = out["churn_probability"].round(PROBABILITY_DECIMALS)
    out["predicted_clv"] = out["predicted_clv"].round(MONEY_DECIMALS)
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
