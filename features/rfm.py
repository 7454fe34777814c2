"""RFM and purchase behaviour: recency, frequency, monetary value and how they change.

All aggregates use transactions strictly before the cutoff (`purchased_at < cutoff_date`).
Refunds (negative amounts) count as returns, not as purchases."""

from __future__ import annotations

import pandas as pd

from features.catalog import Feature, run_stage_query
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

STAGE = "rfm"
TABLE = "transactions"


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    windowed = []
    for w in cfg.windows:
        windowed += [
            Feature(f"purchases_{w}d", STAGE, f"Number of purchases in the last {w} days."),
            Feature(f"revenue_{w}d", STAGE, f"Net revenue (purchases minus refunds) in the last {w} days."),
        ]
    t = cfg.trend_days
    return [
        Feature("days_since_last_purchase", STAGE, "Days since the last purchase."),
        Feature("days_since_first_purchase", STAGE, "Days since the first purchase (purchase tenure)."),
        *windowed,
        Feature("purchases_total", STAGE, "Number of purchases ever."),
        Feature("purchase_days_total", STAGE, "Number of distinct days with a purchase ever."),
        Feature("revenue_total", STAGE, "Net revenue ever (purchases minus refunds)."),
        Feature("average_order_value", STAGE, "Average amount of a purchase."),
        Feature("mean_days_between_purchases", STAGE, "Typical gap between two purchases, in days."),
        Feature("std_days_between_purchases", STAGE, "Spread of the gaps between purchases, in days."),
        Feature("overdue_ratio", STAGE,
                "Days since the last purchase divided by the customer's typical gap (>1: overdue)."),
        Feature("purchase_trend", STAGE,
                f"Purchases in the last {t} days relative to the {t} days before (1 = steady, <1 falling)."),
        Feature("distinct_categories", STAGE, "Number of product categories ever bought."),
        Feature("discount_revenue_share", STAGE, "Share of purchase value that was discounted."),
        Feature("refunds_total", STAGE, "Number of refunds or returns ever."),
        Feature("refund_share", STAGE, "Refunded value as a share of purchased value."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters."""
    params = {f"w{w}": w for w in cfg.windows} | {"trend": cfg.trend_days}
    windowed = ",\n".join(
        f"count(*) FILTER (WHERE is_purchase AND age_days < $w{w}) AS purchases_{w}d,\n"
        f"coalesce(sum(amount) FILTER (WHERE age_days < $w{w}), 0) AS revenue_{w}d"
        for w in cfg.windows
    )
    sql = f"""
    WITH purchases AS (
        -- The gap to the customer's previous purchase only looks backwards in time, so it
        -- can be computed once for all cutoffs. Money is summed as DECIMAL: floating-point
        -- sums depend on the order of parallel work, and scores must not.
        SELECT customer_id, purchased_at, category,
               CAST(amount AS DECIMAL(38, 6)) AS amount,
               CAST(discount_amount AS DECIMAL(38, 6)) AS discount_amount,
               amount > 0 AS is_purchase,
               CASE WHEN amount > 0 THEN date_diff('day',
                   lag(purchased_at) OVER (PARTITION BY customer_id, amount > 0 ORDER BY purchased_at),
                   purchased_at) END AS gap_days
        FROM transactions
    ),
    history AS (
        SELECT s.customer_id, s.cutoff_date, p.*,
               date_diff('day', p.purchased_at, s.cutoff_date) AS age_days
        FROM spine s JOIN purchases p
          ON p.customer_id = s.customer_id AND p.purchased_at < s.cutoff_date
    ),
    agg AS (
        SELECT customer_id, cutoff_date,
            min(age_days) FILTER (WHERE is_purchase) AS days_since_last_purchase,
            max(age_days) FILTER (WHERE is_purchase) AS days_since_first_purchase,
            {windowed},
            count(*) FILTER (WHERE is_purchase) AS purchases_total,
            count(DISTINCT CAST(purchased_at AS DATE)) FILTER (WHERE is_purchase) AS purchase_days_total,
            sum(amount) AS revenue_total,
            avg(amount) FILTER (WHERE is_purchase) AS average_order_value,
            avg(gap_days) AS mean_days_between_purchases,
            -- sample standard deviation from exact integer sums (order-independent)
            sqrt((sum(gap_days * gap_days) - sum(gap_days) * sum(gap_days) / count(gap_days))
                 / nullif(count(gap_days) - 1, 0)) AS std_days_between_purchases,
            count(*) FILTER (WHERE is_purchase AND age_days < $trend) AS recent_purchases,
            count(*) FILTER (WHERE is_purchase AND age_days >= $trend AND age_days < 2 * $trend)
                AS earlier_purchases,
            count(DISTINCT category) FILTER (WHERE is_purchase) AS distinct_categories,
            sum(discount_amount) FILTER (WHERE is_purchase) AS discounted,
            sum(amount) FILTER (WHERE is_purchase) AS purchased,
            count(*) FILTER (WHERE NOT is_purchase) AS refunds_total,
            -sum(amount) FILTER (WHERE NOT is_purchase) AS refunded
        FROM history GROUP BY customer_id, cutoff_date
    )
    SELECT *,  -- the helper aggregates are not features; run_stage_query keeps only features
        days_since_last_purchase / nullif(mean_days_between_purchases, 0) AS overdue_ratio,
        -- +1 on both sides keeps the ratio defined for customers new to either period.
        (recent_purchases + 1.0) / (earlier_purchases + 1.0) AS purchase_trend,
        discounted / nullif(discounted + purchased, 0) AS discount_revenue_share,
        coalesce(refunded, 0) / nullif(purchased, 0) AS refund_share
    FROM agg
    """
    return sql, params


def build_rfm_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """One row per (customer_id, cutoff_date) of `spine` with the features of `catalog`."""
    features = catalog(cfg)
    counts = [f.name for f in features if f.name.startswith(("purchases_", "revenue_", "refunds_"))]
    return run_stage_query(tables, spine, *stage_query(cfg), features,
                           counts + ["purchase_days_total", "distinct_categories"])
