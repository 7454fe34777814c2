"""Subscriptions (contractual business): the active plan, its age, its fee, downgrades.

Only what was known at the cutoff is used: a subscription that ends after the cutoff is
active at the cutoff, and its recorded end date is not used (it lies in the future)."""

from __future__ import annotations

import pandas as pd

from features.feature import Feature
from features.stage_sql import month_diff, run_stage_query
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

STAGE = "subscriptions"
TABLE = "subscriptions"
FAMILY = "subscription"  # the reason family of its features (models/reason_families.py)


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    return [
        Feature("has_active_subscription", STAGE, "1 if a subscription is active at the cutoff."),
        Feature("active_plan", STAGE, "Plan of the active subscription.", kind="categorical"),
        Feature("months_on_current_subscription", STAGE, "Months since the active subscription started."),
        Feature("monthly_fee", STAGE, "Monthly fee of the active subscription."),
        Feature("subscriptions_total", STAGE, "Subscriptions ever started."),
        Feature("subscriptions_ended", STAGE, "Subscriptions that ended before the cutoff."),
        Feature("fee_downgrades", STAGE, "Times a new subscription started at a lower fee than the one before."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters."""
    sql = f"""
    WITH known AS (
        SELECT s.customer_id, s.cutoff_date, b.plan, b.started_at, b.monthly_fee,
               b.ended_at IS NULL OR b.ended_at >= s.cutoff_date AS is_active,
               b.monthly_fee < lag(b.monthly_fee) OVER (
                   PARTITION BY s.customer_id, s.cutoff_date ORDER BY b.started_at) AS is_downgrade
        FROM spine s JOIN subscriptions b
          ON b.customer_id = s.customer_id AND b.started_at < s.cutoff_date
    )
    SELECT customer_id, cutoff_date,
        max(CASE WHEN is_active THEN 1 ELSE 0 END) AS has_active_subscription,
        arg_max(plan, started_at) FILTER (WHERE is_active) AS active_plan,
        min({month_diff('started_at', 'cutoff_date')}) FILTER (WHERE is_active)
            AS months_on_current_subscription,
        arg_max(monthly_fee, started_at) FILTER (WHERE is_active) AS monthly_fee,
        count(*) AS subscriptions_total,
        count(*) FILTER (WHERE NOT is_active) AS subscriptions_ended,
        count(*) FILTER (WHERE is_downgrade) AS fee_downgrades
    FROM known GROUP BY customer_id, cutoff_date
    """
    return sql, {}


def build_subscription_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    counts = ["has_active_subscription", "subscriptions_total", "subscriptions_ended", "fee_downgrades"]
    return run_stage_query(tables, spine, *stage_query(cfg), catalog(cfg), counts)
