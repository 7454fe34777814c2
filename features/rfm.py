"""RFM and purchase behaviour: recency, frequency, monetary value and how they change.

All aggregates use transactions strictly before the cutoff (`purchased_at < cutoff_date`).
Refunds (negative amounts) count as returns, not as purchases."""

from __future__ import annotations

import pandas as pd

from features.feature import Feature
from features.stage_sql import (
    aged_past,
    bucket_keys,
    counted_at,
    cutoff_calendar_sql,
    day_diff,
    events_sql,
    plan_for,
    run_stage_query,
    span_params,
    window_spans,
)
from pipeline.config import FeaturesConfig
from pipeline.contract import MONEY
from pipeline.tables import Tables

STAGE = "rfm"
TABLE = "transactions"
FAMILY = "purchase_lapse"  # the reason family of its features, unless one names its own
EVENTS = events_sql(TABLE, "purchased_at", "category, amount, discount_amount, amount > 0 AS is_purchase")


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    windowed = []
    for w in cfg.windows:
        windowed += [
            Feature(f"purchases_{w}d", STAGE, f"Number of purchases in the last {w} days."),
            Feature(f"revenue_{w}d", STAGE, f"Net revenue (purchases minus refunds) in the last {w} days.",
                    family="spend"),
        ]
    t = cfg.trend_days
    return [
        Feature("days_since_last_purchase", STAGE, "Days since the last purchase."),
        Feature("days_since_first_purchase", STAGE, "Days since the first purchase (purchase tenure)."),
        *windowed,
        Feature("purchases_total", STAGE, "Number of purchases ever."),
        Feature("purchase_days_total", STAGE, "Number of distinct days with a purchase ever."),
        Feature("revenue_total", STAGE, "Net revenue ever (purchases minus refunds).", family="spend"),
        Feature("average_order_value", STAGE, "Average amount of a purchase.", family="spend"),
        Feature("mean_days_between_purchases", STAGE, "Typical gap between two purchases, in days."),
        Feature("std_days_between_purchases", STAGE, "Spread of the gaps between purchases, in days."),
        Feature("overdue_ratio", STAGE,
                "Days since the last purchase divided by the customer's typical gap (>1: overdue)."),
        Feature("purchase_trend", STAGE,
                f"Purchases in the last {t} days relative to the {t} days before (1 = steady, <1 falling)."),
        Feature("distinct_categories", STAGE, "Number of product categories ever bought."),
        Feature("discount_revenue_share", STAGE, "Share of purchase value that was discounted.",
                family="discounts"),
        Feature("refunds_total", STAGE, "Number of refunds or returns ever.", family="refunds"),
        Feature("refund_share", STAGE, "Refunded value as a share of purchased value.", family="refunds"),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters, for a
    spine of one cutoff (nightly scoring).

    With one cutoff, every figure is an aggregate per customer: the events are grouped by
    customer alone (a one-column key), and only the finished rows meet the spine. Spine
    rows at any other cutoff would get no features (never those of a later cutoff)."""
    params, windowed = _windowed_columns(cfg)
    sql = f"""
    WITH cutoff AS (SELECT max(cutoff_date) AS cutoff_date FROM spine),
    per_customer AS (
        SELECT customer_id,
            min(age_days) FILTER (WHERE is_purchase) AS days_since_last_purchase,
            max(age_days) FILTER (WHERE is_purchase) AS days_since_first_purchase,
            {windowed},
            count(*) FILTER (WHERE is_purchase) AS purchases_total,
            sum(amount) AS revenue_total,
            avg(amount) FILTER (WHERE is_purchase) AS average_order_value,
            sum(discount_amount) FILTER (WHERE is_purchase) AS discounted,
            sum(amount) FILTER (WHERE is_purchase) AS purchased,
            count(*) FILTER (WHERE NOT is_purchase) AS refunds_total,
            -sum(amount) FILTER (WHERE NOT is_purchase) AS refunded
        FROM (SELECT e.customer_id, e.is_purchase,
                     CAST(e.amount AS {MONEY}) AS amount, CAST(e.discount_amount AS {MONEY}) AS discount_amount,
                     {day_diff('e.purchased_at', 'c.cutoff_date')} AS age_days
              FROM ({EVENTS}) AS e CROSS JOIN cutoff AS c) AS h
        GROUP BY customer_id
    ),
    gaps AS (
        SELECT customer_id, {_GAP_SUMS} FROM ({purchase_gaps_sql(EVENTS)}) AS g GROUP BY customer_id
    ),
    categories AS (
        SELECT customer_id, count(*) AS distinct_categories
        FROM ({first_bought_sql(EVENTS)}) AS f GROUP BY customer_id
    )
    -- run_stage_query keeps only the features of these columns
    SELECT s.cutoff_date, p.*, gaps.purchase_days AS purchase_days_total, categories.distinct_categories,
        {_ratios("gaps.gap_sum", "gaps.gap_count", "gaps.gap_squares")}
    FROM spine AS s JOIN cutoff AS c ON c.cutoff_date = s.cutoff_date
    JOIN per_customer AS p ON p.customer_id = s.customer_id
    LEFT JOIN gaps ON gaps.customer_id = s.customer_id
    LEFT JOIN categories ON categories.customer_id = s.customer_id
    """
    return sql, params


def stack_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The same features for a spine of many cutoffs (a training stack), and its parameters.

    A training stack asks for many cutoffs at once. Every figure is a running sum of
    buckets: each event lands in the bucket of the first cutoff after it and of the last
    cutoff each window holds it for (`cutoff_calendar_sql`), and a cutoff adds up its
    customer's buckets up to itself, a windowed figure only those still in the window. No
    event meets a cutoff: events x cutoffs would be the largest join of a stack."""
    spans = window_spans(cfg.windows, cfg.trend_days)
    sql = f"""
    WITH calendar AS ({cutoff_calendar_sql(EVENTS, spans)}),
    buckets AS (
        SELECT e.customer_id, {bucket_keys(spans)},
            max(e.purchased_at) FILTER (WHERE e.is_purchase) AS last_purchase_at,
            min(e.purchased_at) FILTER (WHERE e.is_purchase) AS first_purchase_at,
            count(*) FILTER (WHERE e.is_purchase) AS purchases,
            sum(CAST(e.amount AS {MONEY})) AS revenue,
            sum(CAST(e.amount AS {MONEY})) FILTER (WHERE e.is_purchase) AS purchased,
            sum(CAST(e.discount_amount AS {MONEY})) FILTER (WHERE e.is_purchase) AS discounted,
            count(*) FILTER (WHERE NOT e.is_purchase) AS refunds,
            -sum(CAST(e.amount AS {MONEY})) FILTER (WHERE NOT e.is_purchase) AS refunded
        FROM ({EVENTS}) AS e JOIN calendar AS f ON f.day = e.day
        GROUP BY e.customer_id, {bucket_keys(spans)}
    ),
    totals AS (
        SELECT s.customer_id, s.cutoff_date,
            {day_diff('max(b.last_purchase_at)', 's.cutoff_date')} AS days_since_last_purchase,
            {day_diff('min(b.first_purchase_at)', 's.cutoff_date')} AS days_since_first_purchase,
            {_windowed_sums(cfg)},
            sum(b.purchases) AS purchases_total,
            sum(b.revenue) AS revenue_total,
            CAST(sum(b.purchased) AS DOUBLE) / nullif(sum(b.purchases), 0) AS average_order_value,
            sum(b.discounted) AS discounted,
            sum(b.purchased) AS purchased,
            sum(b.refunds) AS refunds_total,
            sum(b.refunded) AS refunded
        FROM spine AS s JOIN buckets AS b
          ON b.customer_id = s.customer_id AND b.first_cutoff <= s.cutoff_date
        GROUP BY s.customer_id, s.cutoff_date
    ),
    gap_buckets AS (
        SELECT g.customer_id, f.first_cutoff, {_GAP_SUMS}
        FROM ({purchase_gaps_sql(EVENTS)}) AS g JOIN calendar AS f ON f.day = g.day
        GROUP BY g.customer_id, f.first_cutoff
    ),
    gaps AS (
        SELECT s.customer_id, s.cutoff_date, sum(b.purchase_days) AS purchase_days,
            sum(b.gap_count) AS gap_count, sum(b.gap_sum) AS gap_sum, sum(b.gap_squares) AS gap_squares
        FROM spine AS s JOIN gap_buckets AS b
          ON b.customer_id = s.customer_id AND b.first_cutoff <= s.cutoff_date
        GROUP BY s.customer_id, s.cutoff_date
    ),
    category_buckets AS (
        -- each category counts once, in the bucket of the day it was first bought
        SELECT b.customer_id, f.first_cutoff, count(*) AS new_categories
        FROM ({first_bought_sql(EVENTS)}) AS b JOIN calendar AS f ON f.day = b.day
        GROUP BY b.customer_id, f.first_cutoff
    ),
    categories AS (
        SELECT s.customer_id, s.cutoff_date, sum(b.new_categories) AS distinct_categories
        FROM spine AS s JOIN category_buckets AS b
          ON b.customer_id = s.customer_id AND b.first_cutoff <= s.cutoff_date
        GROUP BY s.customer_id, s.cutoff_date
    )
    SELECT totals.*, gaps.purchase_days AS purchase_days_total, categories.distinct_categories,
        {_ratios("gaps.gap_sum", "gaps.gap_count", "gaps.gap_squares")}
    FROM totals
    LEFT JOIN gaps ON gaps.customer_id = totals.customer_id AND gaps.cutoff_date = totals.cutoff_date
    LEFT JOIN categories
      ON categories.customer_id = totals.customer_id AND categories.cutoff_date = totals.cutoff_date
    """
    return sql, span_params(spans)


def _windowed_sums(cfg: FeaturesConfig) -> str:
    """The stack's windowed figures, from the buckets joined to a spine row (the same
    figures as `_windowed_columns`, as exact sums of the buckets still in each window)."""
    def purchases(window: str) -> str:
        return f"coalesce(sum(b.purchases) FILTER (WHERE {window}), 0)"

    cutoff, t = "s.cutoff_date", cfg.trend_days
    windowed = [
        f"{purchases(counted_at(w, cutoff))} AS purchases_{w}d,\n"
        f"coalesce(sum(b.revenue) FILTER (WHERE {counted_at(w, cutoff)}), 0) AS revenue_{w}d"
        for w in cfg.windows
    ]
    windowed += [
        f"{purchases(counted_at(t, cutoff))} AS recent_purchases",
        f"{purchases(f'{counted_at(2 * t, cutoff)} AND {aged_past(t, cutoff)}')} AS earlier_purchases",
    ]
    return ",\n".join(windowed)


# --- pieces shared by both plans -------------------------------------------------------


def _windowed_columns(cfg: FeaturesConfig) -> tuple[dict, str]:
    """Parameters, and the aggregates over the last days before a cutoff (events with
    `is_purchase`, `amount` and `age_days`)."""
    params = {f"w{w}": w for w in cfg.windows} | {"trend": cfg.trend_days}
    windowed = [
        f"count(*) FILTER (WHERE is_purchase AND age_days < $w{w}) AS purchases_{w}d,\n"
        f"coalesce(sum(amount) FILTER (WHERE age_days < $w{w}), 0) AS revenue_{w}d"
        for w in cfg.windows
    ]
    windowed += [
        "count(*) FILTER (WHERE is_purchase AND age_days < $trend) AS recent_purchases",
        "count(*) FILTER (WHERE is_purchase AND age_days >= $trend AND age_days < 2 * $trend) AS earlier_purchases",
    ]
    return params, ",\n".join(windowed)


def purchase_gaps_sql(events: str) -> str:
    """Each purchase with the days since the customer's previous purchase. It only looks back
    in time, so one pass over the purchases serves every cutoff; ordering by calendar day
    (a date, the cheapest sort) gives the same gaps as ordering by the moment."""
    return f"""
        SELECT customer_id, day,
               {day_diff('lag(day) OVER (PARTITION BY customer_id ORDER BY day)', 'day')} AS gap_days
        FROM ({events}) AS e WHERE is_purchase
    """


# Sums over `purchase_gaps_sql` rows: exact integers, so that a stack's running sums of
# buckets equal one cutoff's sums. A purchase on a new calendar day has no gap (the first
# one) or a gap of a day or more.
_GAP_SUMS = """count(*) FILTER (WHERE coalesce(gap_days, 1) > 0) AS purchase_days,
    count(gap_days) AS gap_count, sum(gap_days) AS gap_sum, sum(gap_days * gap_days) AS gap_squares"""


def first_bought_sql(events: str) -> str:
    """Each category a customer bought, with the day they first bought it."""
    return f"""
        SELECT customer_id, category, min(day) AS day FROM ({events}) AS e
        WHERE is_purchase AND category IS NOT NULL GROUP BY customer_id, category
    """


def _ratios(gap_sum: str, gap_count: str, gap_squares: str) -> str:
    """The features derived from the aggregates, the same in both plans. Numerators are cast
    to DOUBLE: on Spark a quotient of decimals stays a decimal of 6 places, on DuckDB it is a
    double; every divisor that can be zero is guarded."""
    gaps = gap_count
    mean = f"CAST({gap_sum} AS DOUBLE) / nullif({gaps}, 0)"
    return f"""{mean} AS mean_days_between_purchases,
        -- sample standard deviation from exact integer sums (order-independent)
        sqrt((CAST({gap_squares} AS DOUBLE) - CAST({gap_sum} * {gap_sum} AS DOUBLE) / nullif({gaps}, 0))
             / nullif({gaps} - 1, 0)) AS std_days_between_purchases,
        CAST(days_since_last_purchase AS DOUBLE) / nullif({mean}, 0) AS overdue_ratio,
        -- +1 on both sides keeps the ratio defined for customers new to either period.
        CAST(coalesce(recent_purchases, 0) + 1.0 AS DOUBLE) / (coalesce(earlier_purchases, 0) + 1.0) AS purchase_trend,
        CAST(discounted AS DOUBLE) / nullif(discounted + purchased, 0) AS discount_revenue_share,
        CAST(coalesce(refunded, 0) AS DOUBLE) / nullif(purchased, 0) AS refund_share"""


def build_rfm_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """One row per (customer_id, cutoff_date) of `spine` with the features of `catalog`."""
    features = catalog(cfg)
    counts = [f.name for f in features if f.name.startswith(("purchases_", "revenue_", "refunds_"))]
    return run_stage_query(tables, spine, *plan_for(spine, stage_query, stack_query)(cfg), features,
                           counts + ["purchase_days_total", "distinct_categories"])
