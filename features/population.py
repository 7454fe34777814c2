"""Who counts as an active customer at a cutoff, and who churned after it.

This is the one definition of "active" and "churned", shared by training, evaluation,
scoring and the KPI report. Windows are half-open and meet at the cutoff: features see
[.., cutoff), labels see [cutoff, cutoff + horizon). Cutoffs are midnights, so calendar-day
differences (`day_diff`) express the windows exactly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.feature import KEYS
from features.stage_sql import day_diff
from pipeline.config import ChurnConfig
from pipeline.contract import MONEY
from pipeline.errors import DataError
from pipeline.tables import Tables

# Active (inactivity churn): a purchase in the `lookback` days before the cutoff. A purchase
# day makes its customer active at a run of consecutive cutoffs (those after it, within the
# lookback): each customer's distinct runs are found once, then expanded to their cutoffs,
# instead of joining every purchase to every cutoff.
ACTIVE_BY_PURCHASE_SQL = f"""
WITH calendar AS (
    SELECT d.day, min(c.cutoff_date) AS first_cutoff, max(c.cutoff_date) AS last_cutoff
    FROM (SELECT DISTINCT CAST(purchased_at AS DATE) AS day FROM transactions WHERE amount > 0) AS d
    JOIN cutoffs AS c ON c.cutoff_date > d.day AND {day_diff('d.day', 'c.cutoff_date')} <= $lookback
    GROUP BY d.day
),
runs AS (
    SELECT DISTINCT t.customer_id, k.first_cutoff, k.last_cutoff
    FROM transactions AS t JOIN calendar AS k ON k.day = CAST(t.purchased_at AS DATE)
    WHERE t.amount > 0
)
SELECT DISTINCT r.customer_id, c.cutoff_date
FROM runs AS r JOIN cutoffs AS c ON c.cutoff_date BETWEEN r.first_cutoff AND r.last_cutoff
"""

# Active (subscription churn): a subscription running at the cutoff.
ACTIVE_BY_SUBSCRIPTION_SQL = """
SELECT DISTINCT b.customer_id, c.cutoff_date FROM cutoffs c JOIN subscriptions b
  ON b.started_at < c.cutoff_date AND (b.ended_at IS NULL OR b.ended_at >= c.cutoff_date)
"""

# Label windows, the mirror image of the lookback: an event day counts for every spine
# cutoff in the `horizon` days up to it (its own day included), a run of consecutive cutoffs.
LABEL_CALENDAR_SQL = f"""
    SELECT d.day, min(c.cutoff_date) AS first_cutoff, max(c.cutoff_date) AS last_cutoff
    FROM (SELECT DISTINCT CAST(purchased_at AS DATE) AS day FROM transactions) AS d
    JOIN (SELECT DISTINCT cutoff_date FROM spine) AS c
      ON c.cutoff_date <= d.day AND {day_diff('c.cutoff_date', 'd.day')} < $horizon
    GROUP BY d.day
"""

# Churned (inactivity): no purchase in [cutoff, cutoff + horizon).
INACTIVITY_CHURN_SQL = f"""
WITH calendar AS ({LABEL_CALENDAR_SQL}),
runs AS (
    SELECT DISTINCT t.customer_id, k.first_cutoff, k.last_cutoff
    FROM transactions AS t JOIN calendar AS k ON k.day = CAST(t.purchased_at AS DATE)
    WHERE t.amount > 0
),
retained AS (
    SELECT DISTINCT r.customer_id, c.cutoff_date
    FROM runs AS r JOIN (SELECT DISTINCT cutoff_date FROM spine) AS c
      ON c.cutoff_date BETWEEN r.first_cutoff AND r.last_cutoff
)
SELECT s.customer_id, s.cutoff_date, CASE WHEN r.customer_id IS NULL THEN 1 ELSE 0 END AS is_churned
FROM spine AS s LEFT JOIN retained AS r ON r.customer_id = s.customer_id AND r.cutoff_date = s.cutoff_date
"""

# Churned (subscription): every subscription running at the cutoff ends within the horizon
# and no new one starts within the grace gap after the last end (a plan change ends one
# subscription and starts the next on the same day: no churn).
SUBSCRIPTION_CHURN_SQL = f"""
WITH running AS (
    SELECT s.customer_id, s.cutoff_date, max(coalesce(b.ended_at, TIMESTAMP '9999-12-31')) AS last_end
    FROM spine s JOIN subscriptions b
      ON b.customer_id = s.customer_id AND b.started_at < s.cutoff_date
     AND (b.ended_at IS NULL OR b.ended_at >= s.cutoff_date)
    GROUP BY s.customer_id, s.cutoff_date
)
SELECT r.customer_id, r.cutoff_date,
       CASE WHEN {day_diff('r.cutoff_date', 'r.last_end')} < $horizon
             AND NOT EXISTS (
                 SELECT 1 FROM subscriptions n
                 WHERE n.customer_id = r.customer_id AND n.started_at >= r.cutoff_date
                   AND {day_diff('r.last_end', 'n.started_at')} <= $grace)
            THEN 1 ELSE 0 END AS is_churned
FROM running r
"""

# CLV label: net revenue in [cutoff, cutoff + horizon), summed exactly (MONEY).
CLV_LABEL_SQL = f"""
WITH calendar AS ({LABEL_CALENDAR_SQL}),
runs AS (
    SELECT t.customer_id, k.first_cutoff, k.last_cutoff, sum(CAST(t.amount AS {MONEY})) AS revenue
    FROM transactions AS t JOIN calendar AS k ON k.day = CAST(t.purchased_at AS DATE)
    GROUP BY t.customer_id, k.first_cutoff, k.last_cutoff
),
future AS (
    SELECT r.customer_id, c.cutoff_date, sum(r.revenue) AS revenue
    FROM runs AS r JOIN (SELECT DISTINCT cutoff_date FROM spine) AS c
      ON c.cutoff_date BETWEEN r.first_cutoff AND r.last_cutoff
    GROUP BY r.customer_id, c.cutoff_date
)
SELECT s.customer_id, s.cutoff_date, CAST(coalesce(f.revenue, 0) AS DOUBLE) AS future_revenue
FROM spine AS s LEFT JOIN future AS f ON f.customer_id = s.customer_id AND f.cutoff_date = s.cutoff_date
"""


def label_window_complete(cutoff: dt.date, horizon_days: int, data_end: dt.date) -> bool:
    """Whether the label window [cutoff, cutoff + horizon) is over by the end of the data
    (`data_end`: the last day with events). Before that, a quiet customer is not yet a
    churned one and the revenue of the window is not yet known."""
    return cutoff + dt.timedelta(days=horizon_days) <= data_end + dt.timedelta(days=1)


def latest_complete_cutoff(data_end: dt.date, horizon_days: int, until: dt.date | None = None) -> dt.date:
    """The latest first-of-month (on or before `until`, when given) whose label window is
    complete: the cutoff a model can be judged on most recently."""
    latest = data_end + dt.timedelta(days=1) - dt.timedelta(days=horizon_days)
    if until is not None:
        latest = min(latest, until)
    return latest.replace(day=1)


def cutoff_table(cutoffs: list[dt.date]) -> pd.DataFrame:
    return pd.DataFrame({"cutoff_date": pd.to_datetime(sorted(set(cutoffs))).astype("datetime64[us]")})


def build_active_spine(tables: Tables, cutoffs: list[dt.date], churn: ChurnConfig) -> pd.DataFrame:
    """(customer_id, cutoff_date) for every customer active at each cutoff."""
    if churn.definition == "inactivity":
        sql, params = ACTIVE_BY_PURCHASE_SQL, {"lookback": churn.active_lookback_days}
    else:
        _require_subscriptions(tables)
        sql, params = ACTIVE_BY_SUBSCRIPTION_SQL, {}
    # in the feature frame's order (features/frame.py), which then shares the spine's keys;
    # the engine sorts faster than pandas
    ordered = f"SELECT * FROM ({sql}) AS active ORDER BY customer_id, cutoff_date"
    return tables.query_with("cutoffs", cutoff_table(cutoffs), ordered, params)


def build_churn_labels(tables: Tables, spine: pd.DataFrame, churn: ChurnConfig) -> pd.Series:
    """is_churned (0/1) for each spine row, aligned with it."""
    if churn.definition == "inactivity":
        sql, params = INACTIVITY_CHURN_SQL, {"horizon": churn.horizon_days}
    else:
        _require_subscriptions(tables)
        sql, params = SUBSCRIPTION_CHURN_SQL, {"horizon": churn.horizon_days, "grace": churn.subscription_grace_days}
    return _in_spine_order(tables, spine, sql, params, "is_churned").fillna(0).astype(int)


def build_clv_labels(tables: Tables, spine: pd.DataFrame, horizon_days: int) -> pd.Series:
    """future_revenue: net revenue in [cutoff, cutoff + horizon) for each spine row."""
    return _in_spine_order(tables, spine, CLV_LABEL_SQL, {"horizon": horizon_days}, "future_revenue").fillna(0.0)


def _in_spine_order(tables: Tables, spine: pd.DataFrame, sql: str, params: dict, column: str) -> pd.Series:
    """`column` of `sql` (rows keyed by customer and cutoff) for each spine row, in the
    spine's order; missing where `sql` has no row. The engine matches the rows to a numbered
    spine and orders them: much faster than merging millions of text keys in pandas."""
    _check_midnights(spine)
    numbered = spine[KEYS].assign(spine_row=np.arange(len(spine)))
    aligned = f"""
    WITH found AS ({sql})
    SELECT found.{column} FROM spine AS s
    LEFT JOIN found ON found.customer_id = s.customer_id AND found.cutoff_date = s.cutoff_date
    ORDER BY s.spine_row
    """
    labels = tables.query_with("spine", numbered, aligned, params)[column]
    if len(labels) != len(spine):  # a repeated key matches its label rows more than once
        raise ValueError("the spine repeats a (customer_id, cutoff_date); labels need one row per key")
    return labels


def _check_midnights(spine: pd.DataFrame) -> None:
    """Label windows are whole days from the cutoff's midnight: a cutoff in mid-day would
    give wrong labels silently."""
    cutoffs = pd.to_datetime(spine["cutoff_date"])
    if (cutoffs != cutoffs.dt.normalize()).any():
        raise ValueError("cutoffs must be midnights (label windows are whole calendar days from the cutoff)")


def _require_subscriptions(tables: Tables) -> None:
    if not tables.has("subscriptions"):
        raise DataError(
            "churn.definition is 'subscription' but there is no subscriptions table in the data "
            "folder. Add subscriptions.csv/.parquet or set churn.definition: inactivity."
        )
