"""What every feature stage's SQL is written with and run by: the event and bucket CTEs, the
date differences that DuckDB and Spark count alike (also used by the labels), the plan
choice, and the runner that meets a stage's result with the customer spine.

Stages declare their features (features/feature.py) next to their SQL; features/catalog.py
lists the stages and builds the catalogue from them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pandas as pd

from features.feature import FEATURE_SQL_TYPE, KEYS, Feature

if TYPE_CHECKING:  # the runner is handed the tables; it needs no engine code of its own
    from pipeline.tables import Tables

def day_diff(start: str, end: str) -> str:
    """Calendar days from `start` to `end` (SQL expressions of dates or timestamps): the days
    between their dates, whatever the time of day. DuckDB's date_diff('day') counts day
    boundaries crossed, Spark's whole 24-hour days elapsed; on dates the two agree, so both
    arguments are cast to DATE (tests/features/test_sql_portability.py checks every query)."""
    return f"date_diff('day', CAST({start} AS DATE), CAST({end} AS DATE))"


def month_diff(start: str, end: str) -> str:
    """Calendar months from `start` to `end`: month boundaries crossed, as DuckDB's
    date_diff('month') counts them (Jan 31 to Feb 1 is one). Spark's counts whole months
    elapsed (none there), so the difference is written from year and month."""
    return f"(12 * (year({end}) - year({start})) + month({end}) - month({start}))"


def events_sql(table: str, time: str, columns: str) -> str:
    """The events of the spine's customers that any of its cutoffs can see (strictly before
    the latest one), with their calendar `day`. Written into each query that reads it: as a
    shared CTE the engine would store all of it. A batch of the spine holds consecutive
    customers, so a range of ids selects them, much cheaper than a semi-join."""
    return f"""
        SELECT customer_id, {time}, CAST({time} AS DATE) AS day, {columns}
        FROM {table}
        WHERE {time} < (SELECT max(cutoff_date) FROM spine)
          AND customer_id BETWEEN (SELECT min(customer_id) FROM spine) AND (SELECT max(customer_id) FROM spine)
    """


def window_spans(windows: list[int], trend_days: int) -> list[int]:
    """The window lengths in days a stage's stack counts over: its windows and the trend's
    two, [0, t) and [0, 2t) (the earlier period [t, 2t) is what the second holds and the
    first no longer does: `aged_past`)."""
    return sorted({*windows, trend_days, 2 * trend_days})


def span_params(spans: list[int]) -> dict:
    """The window lengths as parameters of the calendar (never pasted into the SQL)."""
    return {f"span{days}": days for days in spans}


def cutoff_calendar_sql(events: str, spans: list[int]) -> str:
    """For stages that build many cutoffs at once: for each event day, its bucket, the first
    spine cutoff after it, and for each window of `spans` (parameters `span_params`) the last
    cutoff whose window still holds it (`last_cutoff_{days}d`: cutoff - day < days; NULL when
    even the first cutoff is too late). Cutoffs that see a day form one run in the sorted
    cutoffs, so whatever the spacing of the cutoffs, a day counts in window w at cutoff c
    exactly when first_cutoff <= c <= last_cutoff_w (`counted_at`).

    A figure over all time is then a running sum (a cutoff adds up its customer's buckets up
    to itself) instead of a join of every event to every later cutoff, and a windowed figure
    is the same running sum over the buckets whose run still holds the cutoff. Only a few
    thousand days meet the few cutoffs here, never the events."""
    age = day_diff("d.day", "c.cutoff_date")
    last = "".join(f",\n            max(c.cutoff_date) FILTER (WHERE {age} < $span{days}) AS last_cutoff_{days}d"
                   for days in spans)
    return f"""
        SELECT d.day, min(c.cutoff_date) AS first_cutoff{last}
        FROM (SELECT DISTINCT day FROM ({events}) AS e) AS d
        JOIN (SELECT DISTINCT cutoff_date FROM spine) AS c ON c.cutoff_date > d.day
        GROUP BY d.day
    """


def bucket_keys(spans: list[int], calendar: str = "f") -> str:
    """The calendar columns a stack groups its buckets by: events of one customer share a
    bucket when they enter and leave every window at the same cutoffs."""
    return ", ".join([f"{calendar}.first_cutoff", *(f"{calendar}.last_cutoff_{days}d" for days in spans)])


def counted_at(days: int, cutoff: str, bucket: str = "b") -> str:
    """Whether a bucket joined to `cutoff` (first_cutoff <= cutoff) is still in its window of `days`."""
    return f"{bucket}.last_cutoff_{days}d >= {cutoff}"


def aged_past(days: int, cutoff: str, bucket: str = "b") -> str:
    """Whether a bucket joined to `cutoff` is `days` old or more there (out of that window):
    with `counted_at` of a longer window, a period such as the trend's earlier [t, 2t) is a
    filtered sum of counts, never a difference of two (which no lint can prove >= 0)."""
    return f"coalesce({bucket}.last_cutoff_{days}d < {cutoff}, TRUE)"


def plan_for(spine: pd.DataFrame, one_cutoff: Callable, stack: Callable) -> Callable:
    """A stage's query for this spine: the single-pass plan for one cutoff, the bucket plan
    for a stack. Two plans, one definition: a test checks that a stack equals each cutoff
    built alone."""
    return one_cutoff if spine["cutoff_date"].nunique() <= 1 else stack


def run_stage_query(
    tables: Tables,
    spine: pd.DataFrame,
    sql: str,
    params: dict,
    features: list[Feature],
    zero_when_no_events: list[str],
) -> pd.DataFrame:
    """Run a stage's SQL with `spine` (customer_id, cutoff_date) visible as a table.

    The SQL returns rows only for customers with events; here every spine row gets one
    row, in key order. Counts are 0 for customers without events (zero in the window),
    while recencies and averages stay missing (it never happened). The engine does the
    matching and the typing (text for categoricals, FEATURE_SQL_TYPE for the rest: exact sums
    are cast once summed), so only the finished features travel to Python."""
    columns = []
    for feature in features:
        value = f'found."{feature.name}"'
        if feature.name in zero_when_no_events:
            value = f"coalesce({value}, 0)"
        sql_type = "VARCHAR" if feature.kind == "categorical" else FEATURE_SQL_TYPE
        columns.append(f'CAST({value} AS {sql_type}) AS "{feature.name}"')
    matched = f"""
    WITH found AS ({sql})
    SELECT s.customer_id, s.cutoff_date, {", ".join(columns)}
    FROM spine s LEFT JOIN found ON found.customer_id = s.customer_id AND found.cutoff_date = s.cutoff_date
    ORDER BY s.customer_id, s.cutoff_date
    """
    frame = tables.query_with("spine", spine[KEYS], matched, params)
    if len(frame) != len(spine):  # stages are joined side by side: a duplicated key would shift rows
        raise RuntimeError(f"stage query returned {len(frame):,} rows for a spine of {len(spine):,}: "
                           "the spine or the stage result repeats a (customer_id, cutoff_date)")
    return frame
