"""Customer profile: loyalty membership, acquisition channel, country, signup tenure.

These columns describe the customer as they are now (the contract keeps no history of
them); a signup after the cutoff is treated as unknown."""

from __future__ import annotations

import pandas as pd

from features.feature import Feature
from features.stage_sql import day_diff, run_stage_query
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

STAGE = "profile"
TABLE = "customers"
FAMILY = "profile"  # the reason family of its features (models/reason_families.py)


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    return [
        Feature("is_loyalty_member", STAGE, "1 if the customer is a loyalty-programme member."),
        Feature("acquisition_channel", STAGE, "Channel that acquired the customer.", kind="categorical"),
        Feature("country", STAGE, "Country of the customer.", kind="categorical"),
        Feature("days_since_signup", STAGE, "Days since signup."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters."""
    sql = f"""
    SELECT s.customer_id, s.cutoff_date,
        CAST(c.is_loyalty_member AS INTEGER) AS is_loyalty_member,
        c.acquisition_channel, c.country,
        CASE WHEN c.signup_at < s.cutoff_date THEN {day_diff('c.signup_at', 's.cutoff_date')} END
            AS days_since_signup
    FROM spine s JOIN customers c USING (customer_id)
    """
    return sql, {}


def build_profile_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    return run_stage_query(tables, spine, *stage_query(cfg), catalog(cfg), [])
