"""Who counts as an active customer at a cutoff, and who churned after it.

This is the one definition of "active" and "churned", shared by training, evaluation,
scoring and the KPI report. Windows are half-open and meet at the cutoff: features see
[.., cutoff), labels see [cutoff, cutoff + horizon)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline.config import ChurnConfig
from pipeline.tables import Tables


def cutoff_table(cutoffs: list[dt.date]) -> pd.DataFrame:
    return pd.DataFrame({"cutoff_date": pd.to_datetime(sorted(set(cutoffs))).astype("datetime64[us]")})


def build_active_spine(tables: Tables, cutoffs: list[dt.date], churn: ChurnConfig) -> pd.DataFrame:
    """(customer_id, cutoff_date) for every customer active at each cutoff: with a purchase
    in the `active_lookback_days` before it (inactivity churn), or with a subscription
    running at it (subscription churn)."""
    tables.con.register("cutoffs", cutoff_table(cutoffs))
    try:
        if churn.definition == "inactivity":
            sql = """
            SELECT DISTINCT t.customer_id, c.cutoff_date FROM cutoffs c JOIN transactions t
              ON t.purchased_at < c.cutoff_date
             AND t.purchased_at >= c.cutoff_date - to_days(CAST($lookback AS INTEGER))
            WHERE t.amount > 0
            """
            spine = tables.query(sql, {"lookback": churn.active_lookback_days})
        else:
            _require_subscriptions(tables)
            sql = """
            SELECT DISTINCT b.customer_id, c.cutoff_date FROM cutoffs c JOIN subscriptions b
              ON b.started_at < c.cutoff_date AND (b.ended_at IS NULL OR b.ended_at >= c.cutoff_date)
            """
            spine = tables.query(sql)
    finally:
        tables.con.unregister("cutoffs")
    return spine.sort_values(["cutoff_date", "customer_id"], kind="stable").reset_index(drop=True)


def build_churn_labels(tables: Tables, spine: pd.DataFrame, churn: ChurnConfig) -> pd.Series:
    """is_churned (0/1) for each spine row, aligned with it."""
    tables.con.register("spine", spine[["customer_id", "cutoff_date"]])
    try:
        if churn.definition == "inactivity":
            sql = """
            SELECT s.customer_id, s.cutoff_date,
                   CASE WHEN count(t.customer_id) = 0 THEN 1 ELSE 0 END AS is_churned
            FROM spine s LEFT JOIN transactions t
              ON t.customer_id = s.customer_id AND t.amount > 0
             AND t.purchased_at >= s.cutoff_date
             AND t.purchased_at < s.cutoff_date + to_days(CAST($horizon AS INTEGER))
            GROUP BY ALL
            """
            labels = tables.query(sql, {"horizon": churn.horizon_days})
        else:
            labels = tables.query(_SUBSCRIPTION_CHURN_SQL, {
                "horizon": churn.horizon_days, "grace": churn.subscription_grace_days})
    finally:
        tables.con.unregister("spine")
    merged = spine[["customer_id", "cutoff_date"]].merge(labels, how="left", on=["customer_id", "cutoff_date"])
    return merged["is_churned"].fillna(0).astype(int).rename("is_churned")


# A subscriber churned when every subscription running at the cutoff ends within the
# horizon and no new subscription starts before the grace gap after the last end is over
# (a plan change ends one subscription and starts the next on the same day: no churn).
_SUBSCRIPTION_CHURN_SQL = """
WITH running AS (
    SELECT s.customer_id, s.cutoff_date,
           max(coalesce(b.ended_at, TIMESTAMP '9999-12-31')) AS last_end
    FROM spine s JOIN subscriptions b
      ON b.customer_id = s.customer_id AND b.started_at < s.cutoff_date
     AND (b.ended_at IS NULL OR b.ended_at >= s.cutoff_date)
    GROUP BY ALL
)
SELECT r.customer_id, r.cutoff_date,
       CASE WHEN r.last_end < r.cutoff_date + to_days(CAST($horizon AS INTEGER))
             AND NOT EXISTS (
                 SELECT 1 FROM subscriptions n
                 WHERE n.customer_id = r.customer_id AND n.started_at >= r.cutoff_date
                   AND n.started_at <= r.last_end + to_days(CAST($grace AS INTEGER)))
            THEN 1 ELSE 0 END AS is_churned
FROM running r
"""


def build_clv_labels(tables: Tables, spine: pd.DataFrame, horizon_days: int) -> pd.Series:
    """future_revenue: net revenue in [cutoff, cutoff + horizon) for each spine row."""
    tables.con.register("spine", spine[["customer_id", "cutoff_date"]])
    try:
        sql = """
        SELECT s.customer_id, s.cutoff_date,
               CAST(coalesce(sum(CAST(t.amount AS DECIMAL(38, 6))), 0) AS DOUBLE) AS future_revenue
        FROM spine s LEFT JOIN transactions t
          ON t.customer_id = s.customer_id AND t.purchased_at >= s.cutoff_date
         AND t.purchased_at < s.cutoff_date + to_days(CAST($horizon AS INTEGER))
        GROUP BY ALL
        """
        labels = tables.query(sql, {"horizon": horizon_days})
    finally:
        tables.con.unregister("spine")
    merged = spine[["customer_id", "cutoff_date"]].merge(labels, how="left", on=["customer_id", "cutoff_date"])
    return merged["future_revenue"].fillna(0.0).rename("future_revenue")


def _require_subscriptions(tables: Tables) -> None:
    from pipeline.errors import DataError

    if not tables.has("subscriptions"):
        raise DataError(
            "churn.definition is 'subscription' but there is no subscriptions table in the data "
            "folder. Add subscriptions.csv/.parquet or set churn.definition: inactivity."
        )
