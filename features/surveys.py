"""Net Promoter Score answers: the last score, its class, its change and its age.

Promoters answer 9-10, passives 7-8, detractors 0-6."""

from __future__ import annotations

import pandas as pd

from features.feature import Feature
from features.stage_sql import day_diff, run_stage_query
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

STAGE = "surveys"
TABLE = "surveys"
FAMILY = "nps"  # the reason family of its features (models/reason_families.py)


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    return [
        Feature("nps_last", STAGE, "Last NPS answer (0-10)."),
        Feature("nps_class", STAGE, "Class of the last NPS answer: promoter, passive or detractor.",
                kind="categorical"),
        Feature("nps_change", STAGE, "Change of the last NPS answer since the previous one."),
        Feature("days_since_last_survey", STAGE, "Days since the last NPS answer."),
        Feature("surveys_total", STAGE, "NPS answers ever given."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters."""
    sql = f"""
    WITH answers AS (
        SELECT s.customer_id, s.cutoff_date, v.nps_score, v.responded_at,
               {day_diff('v.responded_at', 's.cutoff_date')} AS age_days,
               row_number() OVER (PARTITION BY s.customer_id, s.cutoff_date
                                  ORDER BY v.responded_at DESC, v.nps_score) AS recency_rank
        FROM spine s JOIN surveys v
          ON v.customer_id = s.customer_id AND v.responded_at < s.cutoff_date
    ),
    per_customer AS (
        SELECT customer_id, cutoff_date,
            max(nps_score) FILTER (WHERE recency_rank = 1) AS nps_last,
            max(nps_score) FILTER (WHERE recency_rank = 2) AS nps_previous,
            min(age_days) AS days_since_last_survey,
            count(*) AS surveys_total
        FROM answers GROUP BY customer_id, cutoff_date
    )
    SELECT *,
        CASE WHEN nps_last >= 9 THEN 'promoter' WHEN nps_last >= 7 THEN 'passive'
             WHEN nps_last >= 0 THEN 'detractor' END AS nps_class,
        nps_last - nps_previous AS nps_change
    FROM per_customer
    """
    return sql, {}


def build_survey_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    return run_stage_query(tables, spine, *stage_query(cfg), catalog(cfg), ["surveys_total"])
