"""Cohort triangles: retention and cumulative revenue per customer by the month of first
purchase (the cohort) and the months since, over whole observed months only."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipeline.tables import Tables


def cohort_tables(tables: Tables, first_month: dt.date, complete_until: dt.date
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Retention and cumulative revenue per customer by cohort (month of first purchase,
    from first_month) and month since. Only whole months before complete_until (a first
    of month) are observed: a half-seen month would look like a drop in retention."""
    sizes = tables.query("""
        WITH firsts AS (SELECT customer_id, date_trunc('month', min(purchased_at)) AS cohort_month
                        FROM transactions WHERE amount > 0 GROUP BY customer_id)
        SELECT cohort_month, count(*) AS customers FROM firsts
        WHERE cohort_month >= $first AND cohort_month < $until GROUP BY cohort_month ORDER BY cohort_month""",
        {"first": first_month, "until": complete_until})
    cells = tables.query("""
        WITH firsts AS (SELECT customer_id, date_trunc('month', min(purchased_at)) AS cohort_month
                        FROM transactions WHERE amount > 0 GROUP BY customer_id)
        SELECT f.cohort_month,
               date_diff('month', f.cohort_month, date_trunc('month', t.purchased_at)) AS months_since,
               count(DISTINCT t.customer_id) FILTER (WHERE t.amount > 0) AS buyers,
               sum(t.amount) AS revenue
        FROM firsts f JOIN transactions t USING (customer_id)
        WHERE f.cohort_month >= $first AND f.cohort_month < $until
          AND t.purchased_at >= f.cohort_month AND t.purchased_at < $until
        GROUP BY ALL""", {"first": first_month, "until": complete_until})
    if sizes.empty:
        return pd.DataFrame(columns=["cohort", "customers"]), pd.DataFrame(columns=["cohort", "customers"])
    cohorts = [c.date() for c in pd.to_datetime(sizes["cohort_month"])]
    observed = {c: _months_between(c, complete_until) for c in cohorts}
    width = max(observed.values())
    months = list(range(width))
    cells["cohort_month"] = pd.to_datetime(cells["cohort_month"]).dt.date
    grid = cells.set_index(["cohort_month", "months_since"])
    retention, revenue = [], []
    for cohort, size in zip(cohorts, sizes["customers"], strict=True):
        # Observed months without a purchase are 0; months not yet observed stay missing.
        seen = [n < observed[cohort] for n in months]
        buyers = [grid["buyers"].get((cohort, n), 0) if s else np.nan for n, s in zip(months, seen, strict=True)]
        spent = np.array([grid["revenue"].get((cohort, n), 0.0) for n in months], dtype=float)
        cumulative = np.where(seen, np.cumsum(spent) / size, np.nan)
        retention.append([np.float64(b) / size for b in buyers])
        revenue.append(list(cumulative))
    head = pd.DataFrame({"cohort": [f"{c:%Y-%m}" for c in cohorts], "customers": sizes["customers"].astype(int)})
    columns = [f"month_{n}" for n in months]
    return (pd.concat([head, pd.DataFrame(retention, columns=columns)], axis=1),
            pd.concat([head, pd.DataFrame(revenue, columns=columns)], axis=1))


def _months_between(first: dt.date, until: dt.date) -> int:
    return (until.year - first.year) * 12 + until.month - first.month
