"""The KPIs of the report, each against a value computed by hand on the small world of
tests/pipeline/reporting/world.py (its docstring lists every customer's events)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ChurnConfig
from pipeline.errors import DataError, PipelineError
from pipeline.reporting.kpis import compute_kpis, mrr_movements, practice_clv
from pipeline.reporting.periods import calendar_periods
from tests.pipeline.reporting.world import CHURN, END, NAN, START, assert_column, load, report_world

# --- periods -----------------------------------------------------------------------------


def test_whole_calendar_periods_inside_the_range():
    months = calendar_periods(dt.date(2025, 1, 15), dt.date(2025, 4, 1), "month")
    assert [(p.label, p.start, p.end) for p in months] == [
        ("2025-02", dt.date(2025, 2, 1), dt.date(2025, 3, 1)), ("2025-03", dt.date(2025, 3, 1), dt.date(2025, 4, 1))]
    quarters = calendar_periods(dt.date(2024, 11, 1), dt.date(2026, 1, 1), "quarter")
    assert [p.label for p in quarters] == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert quarters[-1].end == dt.date(2026, 1, 1)


def test_monthly_periods_and_partial_last_month(monthly):
    assert monthly.data_end == dt.date(2025, 4, 20)
    assert list(monthly.kpis["period"]) == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert list(monthly.kpis["fully_observed"]) == [True, True, True, False]
    assert (monthly.window_start, monthly.window_end) == (dt.date(2025, 1, 1), dt.date(2025, 4, 21))


def test_empty_or_late_range_is_refused(tables):
    with pytest.raises(PipelineError, match="No whole calendar quarter"):
        compute_kpis(tables, CHURN, dt.date(2025, 1, 10), dt.date(2025, 3, 1), "quarter")
    with pytest.raises(PipelineError, match="not before end"):
        compute_kpis(tables, CHURN, END, START, "month")
    with pytest.raises(DataError, match="data ends on 2025-04-20"):
        compute_kpis(tables, CHURN, dt.date(2025, 6, 1), dt.date(2025, 9, 1), "month")


# --- customers -----------------------------------------------------------------------------


def test_customers_at_start_end_and_new(monthly):
    # Active = a purchase in the 60 days before: 01-01 {a, d}; 02-01 {a, b}; 03-01 {a, b};
    # 04-01 {a, c, e}; 05-01 {a, c, e}. New: b in January, c and e in March, none in Feb/Apr.
    assert_column(monthly.kpis, "customers_at_start", [2, 2, 2, 3])
    assert_column(monthly.kpis, "customers_at_end", [2, 2, 3, 3])
    assert_column(monthly.kpis, "new_customers", [1, 0, 2, 0])


def test_customer_retention_rate(monthly):
    # (end - new) / start: (2-1)/2, (2-0)/2, (3-2)/2, (3-0)/3.
    assert_column(monthly.kpis, "customer_retention_rate", [0.5, 1.0, 0.5, 1.0])


def test_churn_rate_uses_the_configured_horizon_and_waits_for_its_window(monthly):
    # 30 days from each start: January d churns, a buys; February a (next buy 03-05, after
    # 03-03) and b churn; March b churns, a buys; April's window ends 05-01, after the data.
    assert_column(monthly.kpis, "churned_customers", [1, 2, 1, NAN])
    assert_column(monthly.kpis, "churn_rate", [0.5, 1.0, 0.5, NAN])


def test_a_churn_window_ending_with_the_data_is_complete(tables):
    # The data ends on 04-20, so a window is over when it ends by 04-21: March's (from 03-01)
    # does at 51 days (03-01 + 51 = 04-21) and does not at 52. a buys 03-05: only b churns.
    for horizon, march in [(51, 0.5), (52, NAN)]:
        churn = ChurnConfig(definition="inactivity", horizon_days=horizon, active_lookback_days=60)
        kpis = compute_kpis(tables, churn, START, END, "month").kpis
        assert_column(kpis.iloc[2:3], "churn_rate", [march])
        assert pd.isna(kpis["churn_rate"].iloc[3])


def test_subscription_definition_counts_subscribers_and_first_subscriptions(tmp_path):
    churn = ChurnConfig(definition="subscription", horizon_days=30, active_lookback_days=60)
    kpis = compute_kpis(load(tmp_path, report_world()), churn, START, END, "month").kpis
    # Subscribers at 01-01 {a}; 02-01 {a, b}; 03-01 {b, e}; 04-01 and 05-01 {a, b}.
    # New = first subscription: b (01-05), e (02-01 00:00); a's restart in March is not new.
    assert_column(kpis, "customers_at_start", [1, 2, 2, 2])
    assert_column(kpis, "customers_at_end", [2, 2, 2, 2])
    assert_column(kpis, "new_customers", [1, 1, 0, 0])
    assert_column(kpis, "customer_retention_rate", [1.0, 0.5, 1.0, 1.0])
    # a's gap (02-15 to 03-10) is within the 30-day grace: not churned; e's ends for good.
    assert_column(kpis, "churn_rate", [0.0, 0.0, 0.5, NAN])


# --- purchasing ------------------------------------------------------------------------------


def test_repeat_purchase_rate_counts_history_up_to_the_period_end(monthly):
    # Buyers to date: Jan/Feb {a(2), b, d}; Mar + {c(2), e}; Apr e buys again.
    assert_column(monthly.kpis, "repeat_purchase_rate", [1 / 3, 1 / 3, 2 / 5, 3 / 5])


def test_purchases_frequency_revenue_and_order_value(monthly):
    kpis = monthly.kpis
    assert_column(kpis, "purchases", [2, 0, 4, 1])  # the refund is not a purchase
    assert_column(kpis, "purchasing_customers", [2, 0, 3, 1])
    assert_column(kpis, "purchase_frequency", [1.0, NAN, 4 / 3, 1.0])
    assert_column(kpis, "revenue", [80.0, 0.0, 195.0, 20.0])  # net of b's refund
    assert_column(kpis, "revenue_per_purchasing_customer", [40.0, NAN, 65.0, 20.0])
    assert_column(kpis, "average_order_value", [40.0, NAN, 48.75, 20.0])


# --- cohorts and CLV -------------------------------------------------------------------------


def test_cohort_retention_triangle(monthly):
    # Whole months end before the data does on 04-20: January to March. The January cohort
    # is b alone (a and d bought first in 2024); February has none; March is c and e.
    retention = monthly.cohort_retention
    assert list(retention["cohort"]) == ["2025-01", "2025-03"]
    assert list(retention["customers"]) == [1, 2]
    np.testing.assert_array_equal(retention[["month_0", "month_1", "month_2"]].to_numpy(dtype=float),
                                  [[1.0, 0.0, 0.0], [1.0, NAN, NAN]])


def test_historical_clv_per_cohort(monthly):
    # Cumulative net revenue per customer: b 40 - 10; (c 60 + 25 + e 80) / 2.
    np.testing.assert_allclose(monthly.cohort_revenue[["month_0", "month_1", "month_2"]].to_numpy(dtype=float),
                               [[30.0, 30.0, 30.0], [82.5, NAN, NAN]], equal_nan=True)


def test_practice_clv(monthly):
    # Window 2025-01-01 to 2025-04-21: 110 days, 7 purchases by 4 customers, revenue 295.
    # Pooled churn (1+2+1)/(2+2+2) = 2/3 per 30 days: a customer stays 3/2 horizons, 45 days,
    # 45/365 years (whole lifetime, no cap).
    # CLV = 295/7 x (7/4 x 365/110) x 45/365 = 295 x 45 / (4 x 110) = 30.1705...
    clv = monthly.practice_clv
    assert clv["average_order_value"] == pytest.approx(295 / 7)
    assert clv["purchases_per_customer_per_year"] == pytest.approx(7 / 4 * 365 / 110)
    assert clv["pooled_churn_rate"] == pytest.approx(2 / 3)
    assert clv["average_lifespan_years"] == pytest.approx(45 / 365)
    assert clv["clv"] == pytest.approx(295 * 45 / (4 * 110))


def _rated_periods(at_start: list, churned: list) -> pd.DataFrame:
    """kpis rows as practice_clv reads them: a churn rate only where churned is known."""
    at_start, churned = pd.array(at_start, dtype="Int64"), pd.array(churned, dtype="Int64")
    rate = pd.Series(churned, dtype=float) / pd.Series(at_start, dtype=float)
    return pd.DataFrame({"customers_at_start": at_start, "churned_customers": churned, "churn_rate": rate})


def test_practice_clv_lifespan_is_one_over_the_pooled_rate_in_horizons():
    # Two complete periods, 10 customers each, 2 and 3 churned: pooled 5/20 = 0.25 per 73
    # days; the third period (100 customers, window not over) is left out of the pool.
    # A customer stays 1/0.25 = 4 horizons of 73 days = 292 days = 0.8 years.
    # Window of 146 days with 40 purchases by 10 buyers and revenue 2,000: AOV 50,
    # 4 purchases in 146 days = 10 per year. CLV = 50 x 10 x 0.8 = 400.
    kpis = _rated_periods([10, 10, 100], [2, 3, None])
    totals = {"revenue": 2000.0, "purchases": 40.0, "buyers": 10.0}
    clv = practice_clv(kpis, totals, 146, ChurnConfig(horizon_days=73))
    assert clv == pytest.approx({
        "average_order_value": 50.0, "purchases_per_customer_per_year": 10.0, "pooled_churn_rate": 0.25,
        "average_lifespan_years": 0.8, "clv": 400.0})
    # With a 365-day horizon the pooled rate is an annual rate: 4 years.
    yearly = practice_clv(kpis, totals, 146, ChurnConfig(horizon_days=365))
    assert yearly["average_lifespan_years"] == pytest.approx(4.0)
    assert yearly["clv"] == pytest.approx(50 * 10 * 4)


def test_practice_clv_is_missing_when_nobody_churned_or_nobody_bought():
    nobody_churned = practice_clv(_rated_periods([10], [0]), {"revenue": 100.0, "purchases": 2.0, "buyers": 1.0},
                                  365, ChurnConfig(horizon_days=30))
    assert nobody_churned["pooled_churn_rate"] == 0.0
    assert nobody_churned["average_lifespan_years"] is None and nobody_churned["clv"] is None
    nobody_bought = practice_clv(_rated_periods([10], [5]), {"revenue": 0.0, "purchases": 0.0, "buyers": 0.0},
                                 365, ChurnConfig(horizon_days=30))
    assert nobody_bought["average_order_value"] is None and nobody_bought["clv"] is None
    assert nobody_bought["average_lifespan_years"] is not None


# --- customer voice --------------------------------------------------------------------------


def test_nps_per_period_and_distribution(monthly):
    kpis = monthly.kpis
    assert_column(kpis, "nps_responses", [3, 0, 3, 1])
    assert_column(kpis, "nps_promoters", [2, 0, 1, 0])
    assert_column(kpis, "nps_detractors", [1, 0, 2, 0])
    assert_column(kpis, "nps", [100 / 3, NAN, -100 / 3, 0.0])  # February: nobody answered
    assert monthly.nps_distribution.to_dict() == {0: 1, 1: 0, 2: 0, 3: 1, 4: 0, 5: 1, 6: 0, 7: 1, 8: 0, 9: 2, 10: 1}


def test_csat_ces_and_open_complaints(monthly):
    kpis = monthly.kpis
    # Resolved: Jan k2 (5, 2); Feb k1 (2, 6); Mar k5 (3, 4) and k4 (4, no effort score).
    assert_column(kpis, "tickets_resolved", [1, 1, 2, 0])
    assert_column(kpis, "csat_average", [5.0, 2.0, 3.5, NAN])
    assert_column(kpis, "ces_average", [2.0, 6.0, 4.0, NAN])
    assert_column(kpis, "ces_responses", [1, 1, 1, 0])
    # Open at the period end among the active: b's k1 at 02-01; a's k5 at 03-01; c's k3 since.
    assert_column(kpis, "open_complaint_share", [1 / 2, 1 / 2, 1 / 3, 1 / 3])


# --- subscriptions ---------------------------------------------------------------------------


def test_mrr_and_its_movements(monthly):
    kpis = monthly.kpis
    # MRR at 01-01 a30; 02-01 a30 b30 (e starts exactly at 02-01: not yet running);
    # 03-01 b30 e10 (e ends exactly at 03-01: still running); 04-01 a20 b50; 05-01 a20 b40.
    assert_column(kpis, "mrr_start", [30, 60, 40, 70])
    assert_column(kpis, "mrr_end", [60, 40, 70, 60])
    assert_column(kpis, "new_mrr", [30, 10, 20, 0])  # a's restart after the gap comes back as new
    assert_column(kpis, "expansion_mrr", [0, 0, 20, 0])
    assert_column(kpis, "downgrade_mrr", [0, 0, 0, 10])
    assert_column(kpis, "churned_mrr", [0, 30, 10, 0])  # a leaves in February, e in March
    bridge = kpis["mrr_start"] + kpis["new_mrr"] + kpis["expansion_mrr"] - kpis["downgrade_mrr"] - kpis["churned_mrr"]
    np.testing.assert_allclose(bridge, kpis["mrr_end"])


def test_net_dollar_and_gross_revenue_retention(monthly):
    # March: from b30 e10 to b50 e0 -> NDR 50/40, GRR min(50,30)/40. April: 60/70 both.
    assert_column(monthly.kpis, "net_dollar_retention", [1.0, 0.5, 1.25, 6 / 7])
    assert_column(monthly.kpis, "gross_revenue_retention", [1.0, 0.5, 0.75, 6 / 7])


def test_a_gap_inside_one_quarter_is_a_downgrade_not_churn(tables):
    # Q1: a30 at 01-01 -> a20 b50 at 04-01; a's gap lies inside the quarter and e comes and goes.
    kpis = compute_kpis(tables, CHURN, dt.date(2025, 1, 1), dt.date(2025, 4, 1), "quarter").kpis
    assert list(kpis["period"]) == ["2025-Q1"]
    assert_column(kpis, "churned_mrr", [0.0])
    assert_column(kpis, "downgrade_mrr", [10.0])
    assert_column(kpis, "new_mrr", [50.0])
    assert_column(kpis, "net_dollar_retention", [20 / 30])


def test_mrr_movements_from_free_plan_is_expansion():
    start = pd.Series({"x": 0.0, "y": 25.0})
    end = pd.Series({"x": 15.0})
    moves = mrr_movements(start, end)
    assert (moves["expansion_mrr"], moves["churned_mrr"], moves["new_mrr"]) == (15.0, 25.0, 0.0)
    assert moves["net_dollar_retention"] == pytest.approx(15 / 25)
    assert moves["gross_revenue_retention"] == 0.0
