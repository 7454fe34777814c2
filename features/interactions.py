"""Engagement on every channel: counts per channel and window, and silence.

Silence on every channel at once is a classic warning sign, hence the all-channel recency."""

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
from pipeline.tables import Tables

STAGE = "interactions"
TABLE = "interactions"
FAMILY = "engagement"  # the reason family of its features (models/reason_families.py)
EVENTS = events_sql(TABLE, "occurred_at", "channel")


def catalog(cfg: FeaturesConfig) -> list[Feature]:
    per_channel = []
    for ch in cfg.channels:
        per_channel += [
            Feature(f"{ch}_interactions_{w}d", STAGE, f"Interactions on {ch} in the last {w} days.")
            for w in cfg.windows
        ]
        per_channel.append(
            Feature(f"days_since_last_{ch}_interaction", STAGE, f"Days since the last interaction on {ch}.")
        )
    t = cfg.trend_days
    return [
        *per_channel,
        Feature("days_since_last_interaction", STAGE, "Days since the last interaction on any channel."),
        Feature("interactions_total", STAGE, "Interactions on all channels ever."),
        Feature("engagement_trend", STAGE,
                f"Interactions in the last {t} days relative to the {t} days before (<1 falling)."),
    ]


def stage_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The stage's SQL (over `spine` and the validated tables) and its parameters, for a
    spine of one cutoff (nightly scoring): the events are grouped by customer and channel
    alone, and only the finished rows meet the spine (rows at any other cutoff would get
    no features, never those of a later cutoff)."""
    params, windowed, per_channel = _channel_columns(cfg)
    sql = f"""
    WITH cutoff AS (SELECT max(cutoff_date) AS cutoff_date FROM spine),
    by_channel AS (
        -- one row per customer and channel as written in the data: channel names are then
        -- compared on these few rows, not on every event
        SELECT customer_id, channel, {windowed},
               min(age_days) AS days_since_last,
               count(*) AS events_total,
               count(*) FILTER (WHERE age_days < $trend) AS recent,
               count(*) FILTER (WHERE age_days >= $trend AND age_days < 2 * $trend) AS earlier
        FROM (SELECT e.customer_id, e.channel, {day_diff('e.occurred_at', 'c.cutoff_date')} AS age_days
              FROM ({EVENTS}) AS e CROSS JOIN cutoff AS c) AS h
        GROUP BY customer_id, channel
    ),
    per_customer AS (
        SELECT customer_id, {", ".join(per_channel)},
            min(days_since_last) AS days_since_last_interaction,
            sum(events_total) AS interactions_total,
            CAST(sum(recent) + 1.0 AS DOUBLE) / (sum(earlier) + 1.0) AS engagement_trend
        FROM by_channel GROUP BY customer_id
    )
    SELECT s.cutoff_date, p.*
    FROM spine AS s JOIN cutoff AS c ON c.cutoff_date = s.cutoff_date
    JOIN per_customer AS p ON p.customer_id = s.customer_id
    """
    return sql, params


def stack_query(cfg: FeaturesConfig) -> tuple[str, dict]:
    """The same features for a spine of many cutoffs (a training stack), and its parameters.

    As in the RFM stage, every figure is a running sum of buckets (`cutoff_calendar_sql`):
    a cutoff adds up its customer's buckets up to itself, a windowed count only those
    still in the window, and no event meets a cutoff. The channels are pivoted into
    columns of the buckets before they meet the cutoffs: one row per customer and bucket
    is joined to the cutoffs, not one per channel."""
    spans = window_spans(cfg.windows, cfg.trend_days)
    cutoff, t = "s.cutoff_date", cfg.trend_days
    sql = f"""
    WITH calendar AS ({cutoff_calendar_sql(EVENTS, spans)}),
    channel_buckets AS (
        SELECT e.customer_id, e.channel, {bucket_keys(spans)}, count(*) AS events, max(e.occurred_at) AS last_at
        FROM ({EVENTS}) AS e JOIN calendar AS f ON f.day = e.day
        GROUP BY e.customer_id, e.channel, {bucket_keys(spans)}
    ),
    buckets AS (
        -- channel names are compared on these few rows (a customer's channels as written in
        -- the data, per bucket), neither on every event nor at every cutoff
        SELECT customer_id, {bucket_keys(spans, "c")}, sum(events) AS interactions, max(last_at) AS last_at,
            {_pivoted_channels(cfg)}
        FROM channel_buckets AS c
        GROUP BY customer_id, {bucket_keys(spans, "c")}
    )
    SELECT s.customer_id, s.cutoff_date, {_channel_sums(cfg)},
        {day_diff('max(b.last_at)', cutoff)} AS days_since_last_interaction,
        sum(b.interactions) AS interactions_total,
        CAST({_events_where("interactions", counted_at(t, cutoff))} + 1.0 AS DOUBLE)
            / ({_events_where("interactions", f"{counted_at(2 * t, cutoff)} AND {aged_past(t, cutoff)}")} + 1.0)
            AS engagement_trend
    FROM spine AS s JOIN buckets AS b
      ON b.customer_id = s.customer_id AND b.first_cutoff <= s.cutoff_date
    GROUP BY s.customer_id, s.cutoff_date
    """
    return sql, _channel_params(cfg) | span_params(spans)


def _pivoted_channels(cfg: FeaturesConfig) -> str:
    """Per configured channel, a bucket's events and latest event on it (NULL: none)."""
    columns = []
    for i, ch in enumerate(cfg.channels):
        on_channel = f"FILTER (WHERE lower(channel) = $ch{i})"
        columns += [f"sum(events) {on_channel} AS {ch}_events", f"max(last_at) {on_channel} AS {ch}_last_at"]
    return ",\n            ".join(columns)


def _channel_sums(cfg: FeaturesConfig) -> str:
    """The per-channel features of a spine row, from its buckets' pivoted channel columns."""
    columns = []
    for ch in cfg.channels:
        columns += [f"{_events_where(f'{ch}_events', counted_at(w, 's.cutoff_date'))} AS {ch}_interactions_{w}d"
                    for w in cfg.windows]
        columns.append(f"{day_diff(f'max(b.{ch}_last_at)', 's.cutoff_date')} AS days_since_last_{ch}_interaction")
    return ",\n        ".join(columns)


def _events_where(column: str, window: str) -> str:
    """The sum of a bucket column over the buckets joined to a spine row that `window` keeps (0 when none)."""
    return f"coalesce(sum(b.{column}) FILTER (WHERE {window}), 0)"


def _channel_columns(cfg: FeaturesConfig) -> tuple[dict, str, list[str]]:
    """Parameters, the windowed counts per row of events grouped by customer and channel (and
    cutoff, in a stack), and the per-channel features pivoted from those rows: the same in
    both plans."""
    params = {f"w{w}": w for w in cfg.windows} | {"trend": cfg.trend_days} | _channel_params(cfg)
    windowed = ", ".join(f"count(*) FILTER (WHERE age_days < $w{w}) AS events_{w}d" for w in cfg.windows)
    per_channel = []
    for i, ch in enumerate(cfg.channels):
        per_channel += [
            f"coalesce(sum(events_{w}d) FILTER (WHERE lower(channel) = $ch{i}), 0) AS {ch}_interactions_{w}d"
            for w in cfg.windows
        ]
        per_channel.append(
            f"min(days_since_last) FILTER (WHERE lower(channel) = $ch{i}) AS days_since_last_{ch}_interaction"
        )
    return params, windowed, per_channel


def _channel_params(cfg: FeaturesConfig) -> dict:
    """The channel names the per-channel features compare with (parameters, not pasted text)."""
    return {f"ch{i}": ch for i, ch in enumerate(cfg.channels)}


def build_interaction_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    features = catalog(cfg)
    counts = [f.name for f in features if "_interactions_" in f.name or f.name == "interactions_total"]
    return run_stage_query(tables, spine, *plan_for(spine, stage_query, stack_query)(cfg), features, counts)
