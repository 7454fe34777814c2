"""Retention KPIs per calendar month or quarter (compute_kpis and the SQL behind each KPI):
the numbers the KPI report shows.

Who is an active customer, who churned and when a churn label is known come from
features.population, the one definition shared with training and scoring; the practice
CLV is models.practice_formula's. This module only counts and divides. A purchase is a
transaction with a positive amount (refunds are negative); revenue is net of refunds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.feature import KEYS
from features.population import build_active_spine, build_churn_labels, label_window_complete
from models import practice_formula
from pipeline.config import ChurnConfig
from pipeline.reporting.cohorts import cohort_tables
from pipeline.reporting.periods import Period, PeriodKind, choose_periods, period_floor
from pipeline.tables import Tables

if TYPE_CHECKING:
    from pipeline.reporting.backtest import Backtest

NPS_SCORES = range(11)

# Column order of kpis.csv; counts are nullable integers so that a count of a missing
# table is written as an empty cell, not as 0 or "nan".
COUNT_COLUMNS = [
    "customers_at_start", "customers_at_end", "new_customers", "churned_customers", "purchases",
    "purchasing_customers", "nps_responses", "nps_promoters", "nps_detractors", "tickets_resolved",
    "csat_responses", "ces_responses",
]
KPI_COLUMNS = [
    "period", "period_start", "period_end", "fully_observed",
    "customers_at_start", "customers_at_end", "new_customers", "customer_retention_rate",
    "churned_customers", "churn_rate",
    "repeat_purchase_rate", "purchases", "purchasing_customers", "purchase_frequency",
    "revenue", "revenue_per_purchasing_customer", "average_order_value",
    "nps", "nps_responses", "nps_promoters", "nps_detractors",
    "tickets_resolved", "csat_average", "csat_responses", "ces_average", "ces_responses",
    "open_complaint_share",
    "mrr_start", "mrr_end", "new_mrr", "expansion_mrr", "downgrade_mrr", "churned_mrr",
    "net_dollar_retention", "gross_revenue_retention",
]


@dataclass
class KpiResults:
    """Everything the report shows. `kpis` has one row per period (KPI_COLUMNS);
    `cohort_retention` and `cohort_revenue` are triangles, one row per cohort month,
    columns month_0, month_1, ... (empty where the month is not observed yet)."""

    periods: list[Period]
    data_end: dt.date
    window_start: dt.date
    window_end: dt.date  # exclusive: the report window ends here or where the data ends
    kpis: pd.DataFrame
    cohort_retention: pd.DataFrame
    cohort_revenue: pd.DataFrame
    nps_distribution: pd.Series | None
    practice_clv: dict[str, float | None]
    skipped: dict[str, str] = field(default_factory=dict)  # section -> why it is skipped
    notes: list[str] = field(default_factory=list)
    backtest: Backtest | None = None  # the champion models against what happened, when they exist


# --- helpers ---------------------------------------------------------------------------


def _timestamps(days: list[dt.date]) -> pd.Series:
    return pd.Series(pd.to_datetime(days)).astype("datetime64[us]")


def _periods_frame(periods: list[Period]) -> pd.DataFrame:
    return pd.DataFrame({"period_start": _timestamps([p.start for p in periods]),
                         "period_end": _timestamps([p.end for p in periods])})


def _per_period(tables: Tables, periods: list[Period], sql: str, params: dict | None = None) -> pd.DataFrame:
    """Run SQL that sees `kpi_periods` (period_start, period_end) and returns one row per
    period_start; the result has one row per period, in period order."""
    frame = _periods_frame(periods)
    result = tables.query_with("kpi_periods", frame, sql, params)
    return frame[["period_start"]].merge(result, on="period_start", how="left").drop(columns="period_start")


def _ratio(numerator, denominator) -> pd.Series:
    """numerator / denominator, missing where the denominator is 0 (nobody to divide among)."""
    numerator, denominator = pd.Series(numerator, dtype=float), pd.Series(denominator, dtype=float)
    return numerator / denominator.where(denominator > 0)


# --- customers: active, new, retained, churned ----------------------------------------


def customer_base(tables: Tables, periods: list[Period], churn: ChurnConfig, data_end: dt.date,
                  spine: pd.DataFrame) -> pd.DataFrame:
    """Customers at start and end, new customers, retention rate, churn rate."""
    active = spine.groupby("cutoff_date").size()
    at_start = np.array([active.get(pd.Timestamp(p.start), 0) for p in periods])
    at_end = np.array([active.get(pd.Timestamp(p.end), 0) for p in periods])
    new = _per_period(tables, periods, _NEW_CUSTOMERS_SQL[churn.definition])["new_customers"].to_numpy()
    churned = churned_customers(tables, periods, churn, data_end, spine)
    return pd.DataFrame({
        "customers_at_start": at_start,
        "customers_at_end": at_end,
        "new_customers": new,
        "customer_retention_rate": _ratio(at_end - new, at_start),
        "churned_customers": churned,
        "churn_rate": _ratio(churned, at_start),  # missing where the label window is incomplete
    })


# "New" follows the churn definition, so that new customers are the ones who joined the
# active base: a first purchase (inactivity) or a first subscription (subscription).
_NEW_CUSTOMERS_SQL = {
    "inactivity": """
        WITH joined AS (SELECT customer_id, min(purchased_at) AS joined_at
                        FROM transactions WHERE amount > 0 GROUP BY customer_id)
        SELECT p.period_start, count(j.customer_id) AS new_customers
        FROM kpi_periods p LEFT JOIN joined j ON j.joined_at >= p.period_start AND j.joined_at < p.period_end
        GROUP BY p.period_start""",
    "subscription": """
        WITH joined AS (SELECT customer_id, min(started_at) AS joined_at
                        FROM subscriptions GROUP BY customer_id)
        SELECT p.period_start, count(j.customer_id) AS new_customers
        FROM kpi_periods p LEFT JOIN joined j ON j.joined_at >= p.period_start AND j.joined_at < p.period_end
        GROUP BY p.period_start""",
}


def churned_customers(tables: Tables, periods: list[Period], churn: ChurnConfig, data_end: dt.date,
                      spine: pd.DataFrame) -> pd.Series:
    """Customers active at each period start whose churn label is 1; missing where the
    label window [period start, + horizon) is not complete by `data_end` (the last day
    with events): before then a quiet customer is not yet a churned one."""
    complete = [pd.Timestamp(p.start) for p in periods
                if label_window_complete(p.start, churn.horizon_days, data_end)]
    at_starts = spine[spine["cutoff_date"].isin(complete)].reset_index(drop=True)
    counts = pd.Series(0, index=complete, dtype=float)
    if len(at_starts):
        labels = build_churn_labels(tables, at_starts, churn)
        counts = counts.add(labels.groupby(at_starts["cutoff_date"]).sum(), fill_value=0)
    return pd.Series([counts.get(pd.Timestamp(p.start), np.nan) for p in periods], dtype=float)


# --- purchasing ------------------------------------------------------------------------


def purchasing(tables: Tables, periods: list[Period]) -> pd.DataFrame:
    """Repeat-purchase rate, purchases, purchase frequency, revenue, AOV."""
    in_period = _per_period(tables, periods, """
        SELECT p.period_start,
               count(t.customer_id) FILTER (WHERE t.amount > 0) AS purchases,
               count(DISTINCT t.customer_id) FILTER (WHERE t.amount > 0) AS purchasing_customers,
               coalesce(sum(t.amount), 0) AS revenue
        FROM kpi_periods p LEFT JOIN transactions t
          ON t.purchased_at >= p.period_start AND t.purchased_at < p.period_end
        GROUP BY p.period_start""")
    # Repeat buyers are counted over each customer's whole history up to the period end,
    # not only within the period: a monthly window would call most loyal customers one-off.
    to_date = _per_period(tables, periods, """
        WITH history AS (
            SELECT p.period_start, t.customer_id, count(*) AS purchases
            FROM kpi_periods p JOIN transactions t ON t.amount > 0 AND t.purchased_at < p.period_end
            GROUP BY ALL)
        SELECT period_start, count(*) AS buyers, count(*) FILTER (WHERE purchases >= 2) AS repeat_buyers
        FROM history GROUP BY period_start""").fillna(0)
    buyers = in_period["purchasing_customers"]
    return pd.DataFrame({
        "repeat_purchase_rate": _ratio(to_date["repeat_buyers"], to_date["buyers"]),
        "purchases": in_period["purchases"],
        "purchasing_customers": buyers,
        "purchase_frequency": _ratio(in_period["purchases"], buyers),
        "revenue": in_period["revenue"].astype(float),
        "revenue_per_purchasing_customer": _ratio(in_period["revenue"], buyers),
        "average_order_value": _ratio(in_period["revenue"], in_period["purchases"]),
    })


def window_purchases(tables: Tables, start: dt.date, end: dt.date) -> dict[str, float]:
    """Purchases, distinct purchasing customers and net revenue in [start, end)."""
    row = tables.query("""
        SELECT count(*) FILTER (WHERE amount > 0) AS purchases,
               count(DISTINCT customer_id) FILTER (WHERE amount > 0) AS buyers,
               coalesce(sum(amount), 0) AS revenue
        FROM transactions WHERE purchased_at >= $start AND purchased_at < $end""",
        {"start": start, "end": end}).iloc[0]
    return {name: float(value) for name, value in row.items()}


def practice_clv(kpis: pd.DataFrame, totals: dict[str, float], window_days: int, churn: ChurnConfig
                 ) -> dict[str, float | None]:
    """The practice CLV formula (models.practice_formula) over the report window, for a
    whole lifetime: AOV x purchases per customer per year x expected lifespan in years.
    The churn rate is pooled over the periods whose label window is complete (a rate per
    horizon); the lifespan is 1 / that rate horizons. A figure is None where its inputs are
    missing (no purchase, no complete period, nobody churned: the lifespan is unbounded)."""
    aov = totals["revenue"] / totals["purchases"] if totals["purchases"] else None
    per_year = (totals["purchases"] / totals["buyers"] * practice_formula.DAYS_PER_YEAR / window_days
                if totals["buyers"] and window_days > 0 else None)
    rated = kpis[kpis["churn_rate"].notna()]
    at_start, churned = rated["customers_at_start"].sum(), rated["churned_customers"].sum()
    pooled = float(churned / at_start) if at_start else None
    lifespan = practice_formula.expected_lifespan_years(pooled, churn.horizon_days) if pooled else None
    clv = (float(practice_formula.practice_clv(aov, per_year, lifespan))
           if None not in (aov, per_year, lifespan) else None)
    return {"average_order_value": aov, "purchases_per_customer_per_year": per_year,
            "pooled_churn_rate": pooled, "average_lifespan_years": lifespan, "clv": clv}


# --- customer voice: NPS, CSAT, CES, complaints -----------------------------------------


def nps_by_period(tables: Tables, periods: list[Period]) -> pd.DataFrame:
    counts = _per_period(tables, periods, """
        SELECT p.period_start, count(s.nps_score) AS nps_responses,
               count(*) FILTER (WHERE s.nps_score >= 9) AS nps_promoters,
               count(*) FILTER (WHERE s.nps_score <= 6) AS nps_detractors
        FROM kpi_periods p LEFT JOIN surveys s
          ON s.responded_at >= p.period_start AND s.responded_at < p.period_end
        GROUP BY p.period_start""")
    counts["nps"] = _ratio(counts["nps_promoters"] - counts["nps_detractors"], counts["nps_responses"]) * 100
    return counts


def nps_distribution(tables: Tables, start: dt.date, end: dt.date) -> pd.Series:
    """Answers per score 0-10 in [start, end), every score present (0 when nobody gave it)."""
    counts = tables.query(
        "SELECT nps_score, count(*) AS answers FROM surveys "
        "WHERE responded_at >= $start AND responded_at < $end GROUP BY nps_score",
        {"start": start, "end": end}).set_index("nps_score")["answers"]
    return counts.reindex(list(NPS_SCORES), fill_value=0).astype(int).rename_axis("nps_score")


def support_by_period(tables: Tables, periods: list[Period], spine: pd.DataFrame) -> pd.DataFrame:
    """CSAT and CES of tickets resolved in the period; share of the customers active at
    the period end who have a complaint open at that moment."""
    scores = _per_period(tables, periods, """
        SELECT p.period_start, count(k.ticket_id) AS tickets_resolved,
               avg(k.satisfaction) AS csat_average, count(k.satisfaction) AS csat_responses,
               avg(k.effort_score) AS ces_average, count(k.effort_score) AS ces_responses
        FROM kpi_periods p LEFT JOIN support_tickets k
          ON k.resolved_at >= p.period_start AND k.resolved_at < p.period_end
        GROUP BY p.period_start""")
    at_end = spine[spine["cutoff_date"].isin([pd.Timestamp(p.end) for p in periods])]
    open_complaints = tables.query_with("kpi_active", at_end[KEYS], """
        SELECT a.cutoff_date, count(*) AS active,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM support_tickets k
                   WHERE k.customer_id = a.customer_id AND lower(k.category) = 'complaint'
                     AND k.opened_at < a.cutoff_date
                     AND (k.resolved_at IS NULL OR k.resolved_at >= a.cutoff_date))) AS complaining
        FROM kpi_active a GROUP BY a.cutoff_date""").set_index("cutoff_date")
    ends = [pd.Timestamp(p.end) for p in periods]
    scores["open_complaint_share"] = _ratio(
        open_complaints["complaining"].reindex(ends).to_numpy(), open_complaints["active"].reindex(ends).to_numpy())
    return scores


# --- subscriptions: MRR and its movements ---------------------------------------------


def subscription_mrr(tables: Tables, periods: list[Period]) -> pd.DataFrame:
    """MRR at each period's start and end and the movements between them, per customer."""
    moments = sorted({p.start for p in periods} | {p.end for p in periods})
    # "Running at a moment" is the same rule as subscription activity in
    # features.population: started before it and not ended before it.
    running = tables.query_with("kpi_moments", pd.DataFrame({"moment": _timestamps(moments)}), """
        SELECT m.moment, b.customer_id, sum(coalesce(b.monthly_fee, 0)) AS mrr
        FROM kpi_moments m JOIN subscriptions b
          ON b.started_at < m.moment AND (b.ended_at IS NULL OR b.ended_at >= m.moment)
        GROUP BY ALL""")
    by_moment = {moment: group.set_index("customer_id")["mrr"] for moment, group in running.groupby("moment")}
    empty = pd.Series(dtype=float)
    rows = [mrr_movements(by_moment.get(pd.Timestamp(p.start), empty), by_moment.get(pd.Timestamp(p.end), empty))
            for p in periods]
    return pd.DataFrame(rows)


def mrr_movements(at_start: pd.Series, at_end: pd.Series) -> dict[str, float]:
    """MRR bridge between two moments, from each subscriber's MRR (indexed by customer_id;
    a customer is absent when no subscription of theirs is running). It balances:
    end = start + new + expansion - downgrade - churned."""
    both = pd.concat({"start": at_start, "end": at_end}, axis=1).astype(float)
    was_subscribed, is_subscribed = both["start"].notna(), both["end"].notna()
    both = both.fillna(0.0)
    stayed = both[was_subscribed & is_subscribed]
    mrr_start = float(both["start"].sum())
    kept = both[was_subscribed]
    return {
        "mrr_start": mrr_start,
        "mrr_end": float(both["end"].sum()),
        "new_mrr": float(both.loc[~was_subscribed, "end"].sum()),
        "expansion_mrr": float((stayed["end"] - stayed["start"]).clip(lower=0).sum()),
        "downgrade_mrr": float((stayed["start"] - stayed["end"]).clip(lower=0).sum()),
        "churned_mrr": float(both.loc[was_subscribed & ~is_subscribed, "start"].sum()),
        "net_dollar_retention": kept["end"].sum() / mrr_start if mrr_start else np.nan,
        "gross_revenue_retention": np.minimum(kept["end"], kept["start"]).sum() / mrr_start if mrr_start else np.nan,
    }


# --- all together ----------------------------------------------------------------------


def compute_kpis(tables: Tables, churn: ChurnConfig, start: dt.date, end: dt.date, kind: PeriodKind
                 ) -> KpiResults:
    """Every KPI per whole calendar period of [start, end) that the data reaches, the cohort
    triangles and the practice CLV over the report window, and the sections left out."""
    data_end = tables.last_event_at().date()
    observed_until = data_end + dt.timedelta(days=1)  # exclusive end of what the data covers
    periods, notes = choose_periods(start, end, kind, observed_until)
    window_start, window_end = periods[0].start, min(periods[-1].end, observed_until)
    moments = sorted({p.start for p in periods} | {p.end for p in periods})
    spine = build_active_spine(tables, moments, churn)

    frame = pd.DataFrame({
        "period": [p.label for p in periods],
        "period_start": [p.start.isoformat() for p in periods],
        "period_end": [p.end.isoformat() for p in periods],
        "fully_observed": [p.end <= observed_until for p in periods],
    })
    parts = [customer_base(tables, periods, churn, data_end, spine), purchasing(tables, periods)]
    skipped = {}
    sections = {"surveys": ("Customer voice: NPS", lambda: nps_by_period(tables, periods)),
                "support_tickets": ("Customer voice: support", lambda: support_by_period(tables, periods, spine)),
                "subscriptions": ("Subscriptions", lambda: subscription_mrr(tables, periods))}
    for table, (section, compute) in sections.items():
        if tables.has(table):
            parts.append(compute())
        else:
            skipped[section] = f"no {table} table in the data"
    kpis = pd.concat([frame, *parts], axis=1).reindex(columns=KPI_COLUMNS)
    for column in COUNT_COLUMNS:
        kpis[column] = kpis[column].astype("Int64")

    # Periods start on a first of month, so the first cohort is the window's first month.
    retention, revenue = cohort_tables(tables, window_start, period_floor(window_end, "month"))
    if retention.empty:
        skipped["Cohorts"] = "no cohort has a whole month observed in the report window"
    totals = window_purchases(tables, window_start, window_end)
    return KpiResults(
        periods=periods, data_end=data_end, window_start=window_start, window_end=window_end,
        kpis=kpis, cohort_retention=retention, cohort_revenue=revenue,
        nps_distribution=nps_distribution(tables, window_start, window_end) if tables.has("surveys") else None,
        practice_clv=practice_clv(kpis, totals, (window_end - window_start).days, churn),
        skipped=skipped, notes=notes,
    )
