"""Support experience: tickets, unresolved problems, complaints, satisfaction and effort.

A ticket's resolution, CSAT and effort score are only known once it is resolved, so they
count only for tickets resolved strictly before the cutoff; a ticket resolved after the
cutoff was still open at the cutoff."""

from __future__ import annotations

import pandas as pd

from features.feature import Feature
from features.stage_sql import day_diff, run_stage_query
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

STAGE = "support_tickets"
TABLE = "support_tickets"
FAMILY = "support"  # the reason family of its features (models/reason_families.py)


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    target = cfg.ticket_resolution_target_days
    return [
        *(Feature(f"tickets_{w}d", STAGE, f"Support tickets opened in the last {w} days.") for w in cfg.windows),
        Feature("tickets_total", STAGE, "Support tickets opened ever."),
        Feature("open_tickets", STAGE, "Tickets opened before the cutoff and not yet resolved."),
        Feature("days_oldest_open_ticket", STAGE, "Age in days of the oldest unresolved ticket."),
        Feature("complaints_total", STAGE, "Tickets in the complaint category ever."),
        Feature("open_complaints", STAGE, "Complaints not yet resolved."),
        Feature("mean_resolution_days", STAGE, "Mean days to resolve a ticket."),
        Feature("max_resolution_days", STAGE, "Longest time to resolve a ticket, in days."),
        Feature("slow_ticket_share", STAGE,
                f"Share of resolved tickets that took longer than {target:g} days."),
        Feature("csat_last", STAGE, "Satisfaction (CSAT 1-5) on the last resolved ticket."),
        Feature("csat_mean", STAGE, "Mean satisfaction (CSAT 1-5) over resolved tickets."),
        Feature("effort_last", STAGE, "Customer effort score (1-7) on the last resolved ticket."),
        Feature("effort_mean", STAGE, "Mean customer effort score (1-7)."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters."""
    params = {f"w{w}": w for w in cfg.windows} | {"target": cfg.ticket_resolution_target_days}
    windowed = ", ".join(f"count(*) FILTER (WHERE age_days < $w{w}) AS tickets_{w}d" for w in cfg.windows)
    # both ends cut to whole seconds: DuckDB counts second boundaries, Spark elapsed seconds
    resolution_seconds = "date_diff('second', date_trunc('second', t.opened_at), date_trunc('second', t.resolved_at))"
    sql = f"""
    WITH history AS (
        SELECT s.customer_id, s.cutoff_date, t.opened_at, t.satisfaction, t.effort_score,
               lower(coalesce(t.category, '')) = 'complaint' AS is_complaint,
               {day_diff('t.opened_at', 's.cutoff_date')} AS age_days,
               t.resolved_at IS NOT NULL AND t.resolved_at < s.cutoff_date AS is_resolved,
               {resolution_seconds} AS resolution_seconds,
               t.resolved_at
        FROM spine s JOIN support_tickets t
          ON t.customer_id = s.customer_id AND t.opened_at < s.cutoff_date
    )
    SELECT customer_id, cutoff_date, {windowed},
        count(*) AS tickets_total,
        count(*) FILTER (WHERE NOT is_resolved) AS open_tickets,
        max(age_days) FILTER (WHERE NOT is_resolved) AS days_oldest_open_ticket,
        count(*) FILTER (WHERE is_complaint) AS complaints_total,
        count(*) FILTER (WHERE is_complaint AND NOT is_resolved) AS open_complaints,
        -- averages of whole seconds: exact sums, the same whatever the order of parallel work
        CAST(avg(resolution_seconds) FILTER (WHERE is_resolved) AS DOUBLE) / 86400 AS mean_resolution_days,
        CAST(max(resolution_seconds) FILTER (WHERE is_resolved) AS DOUBLE) / 86400 AS max_resolution_days,
        avg(CASE WHEN resolution_seconds > $target * 86400 THEN 1 ELSE 0 END) FILTER (WHERE is_resolved)
            AS slow_ticket_share,
        arg_max(satisfaction, resolved_at) FILTER (WHERE is_resolved AND satisfaction IS NOT NULL)
            AS csat_last,
        avg(satisfaction) FILTER (WHERE is_resolved) AS csat_mean,
        arg_max(effort_score, resolved_at) FILTER (WHERE is_resolved AND effort_score IS NOT NULL)
            AS effort_last,
        avg(effort_score) FILTER (WHERE is_resolved) AS effort_mean
    FROM history GROUP BY customer_id, cutoff_date
    """
    return sql, params


def build_support_ticket_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    features = catalog(cfg)
    counts = [f.name for f in features if f.name.startswith("tickets_")]
    counts += ["open_tickets", "complaints_total", "open_complaints"]
    return run_stage_query(tables, spine, *stage_query(cfg), features, counts)
