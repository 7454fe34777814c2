"""The KPI report: every KPI against a value computed by hand on a small world built here,
the HTML is self-contained (every chart embedded, no external URL), the CSVs are stable.

The world, January to April 2025 by month, inactivity churn with a 60-day lookback and a
30-day horizon; the data ends on 2025-04-20 (a survey answer), so April is partial and its
churn window is not over:

    a  buys 2024-12-10 (100), 2025-01-15 (50), 03-05 (30); subscribes 30/month until 02-15,
       restarts at 20/month on 03-10 after a gap (spanning the March 1 boundary)
    b  buys 01-20 (40), refunds 01-25 (-10): the January cohort, a cohort of one;
       subscribes 30 from 01-05, upgrades to 50 on 03-20, downgrades to 40 on 04-15
    c  buys 03-10 (60), 03-12 (25); has an open complaint from 03-11
    d  buys 2024-11-15 (20) and never again (churned in January)
    e  buys 03-15 (80), 04-10 (20); subscribed at 10 for February only (from 02-01 00:00
       to 03-01 00:00, exactly on the boundaries)
    f  never buys

February has no new customer and no survey answer; nobody's first purchase is in April."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import ChurnConfig, Config
from pipeline.errors import DataError, PipelineError
from pipeline.report import build_kpi_report
from pipeline.report_kpis import calendar_periods, compute_kpis, mrr_movements
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, write_world

START, END = dt.date(2025, 1, 1), dt.date(2025, 5, 1)
CHURN = ChurnConfig(definition="inactivity", horizon_days=30, active_lookback_days=60)
CFG = Config(churn=CHURN)
NAN = np.nan
ALL_CHARTS = 18  # customers 3 + purchasing 5 + cohorts 2 + NPS 2 + support 3 + subscriptions 3
CORE_CHARTS = 10  # without surveys, support tickets and subscriptions


def report_world() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "signup_at": ["2024-12-01", "2025-01-05", "2025-03-01", "2024-11-01", "2025-02-01", "2025-02-01"],
    })
    transactions = pd.DataFrame([
        ("t1", "a", "2024-12-10 10:00", 100.0), ("t2", "a", "2025-01-15 10:00", 50.0),
        ("t3", "b", "2025-01-20 10:00", 40.0), ("t4", "b", "2025-01-25 10:00", -10.0),
        ("t5", "a", "2025-03-05 10:00", 30.0), ("t6", "c", "2025-03-10 10:00", 60.0),
        ("t7", "c", "2025-03-12 10:00", 25.0), ("t8", "e", "2025-03-15 10:00", 80.0),
        ("t9", "e", "2025-04-10 10:00", 20.0), ("t10", "d", "2024-11-15 10:00", 20.0),
    ], columns=["transaction_id", "customer_id", "purchased_at", "amount"])
    surveys = pd.DataFrame([
        ("a", "2025-01-05 10:00", 10), ("b", "2025-01-22 10:00", 3), ("d", "2025-01-28 10:00", 9),
        ("a", "2025-03-20 10:00", 9), ("e", "2025-03-25 10:00", 0), ("c", "2025-03-28 10:00", 5),
        ("c", "2025-04-20 10:00", 7),
    ], columns=["customer_id", "responded_at", "nps_score"])
    support_tickets = pd.DataFrame([
        ("k1", "b", "2025-01-21 09:00", "2025-02-10 09:00", "complaint", "2", "6"),
        ("k2", "a", "2025-01-10 09:00", "2025-01-12 09:00", "billing", "5", "2"),
        ("k3", "c", "2025-03-11 09:00", None, "complaint", None, None),
        ("k4", "e", "2025-03-16 09:00", "2025-03-18 09:00", "delivery", "4", None),
        ("k5", "a", "2025-02-20 09:00", "2025-03-02 09:00", "complaint", "3", "4"),
    ], columns=["ticket_id", "customer_id", "opened_at", "resolved_at", "category", "satisfaction", "effort_score"])
    subscriptions = pd.DataFrame([
        ("s1", "a", "plus", "2024-12-01", "2025-02-15", 30.0),
        ("s2", "a", "basic", "2025-03-10", None, 20.0),
        ("s3", "b", "plus", "2025-01-05", "2025-03-20", 30.0),
        ("s4", "b", "premium", "2025-03-20", "2025-04-15", 50.0),
        ("s5", "e", "basic", "2025-02-01 00:00", "2025-03-01 00:00", 10.0),
        ("s6", "b", "plus", "2025-04-15", None, 40.0),
    ], columns=["subscription_id", "customer_id", "plan", "started_at", "ended_at", "monthly_fee"])
    return {"customers": customers, "transactions": transactions, "surveys": surveys,
            "support_tickets": support_tickets, "subscriptions": subscriptions}


def load(folder: Path, world: dict[str, pd.DataFrame]):
    return load_tables(write_world(folder, world), RUN_AT, None)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    return load(tmp_path_factory.mktemp("world"), report_world())


@pytest.fixture(scope="module")
def monthly(tables):
    return compute_kpis(tables, CHURN, START, END, "month")


@pytest.fixture(scope="module")
def report(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_kpi_report(tables, CFG, START, END, "month", out, with_backtest=False)


def assert_column(kpis: pd.DataFrame, column: str, expected: list) -> None:
    actual = kpis[column].astype(float).to_numpy()
    np.testing.assert_allclose(actual, np.array(expected, dtype=float), rtol=1e-9, equal_nan=True,
                               err_msg=column)


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
    # Pooled churn (1+2+1)/(2+2+2) per 30 days -> lifespan 30/365.25 / (2/3) years.
    clv = monthly.practice_clv
    assert clv["average_order_value"] == pytest.approx(295 / 7)
    assert clv["purchases_per_customer_per_year"] == pytest.approx(7 / 4 * 365.25 / 110)
    assert clv["pooled_churn_rate"] == pytest.approx(2 / 3)
    assert clv["average_lifespan_years"] == pytest.approx(45 / 365.25)
    assert clv["clv"] == pytest.approx(295 * 45 / (4 * 110))


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


# --- the files -------------------------------------------------------------------------------


def test_files_written_atomically_with_no_leftovers(report):
    assert set(report) == {"html", "kpis", "cohorts"}
    folder = report["html"].parent
    assert sorted(p.name for p in folder.iterdir()) == ["cohort_retention.csv", "kpi_report.html", "kpis.csv"]


def test_cohort_csv_is_the_triangle(report):
    assert report["cohorts"].read_text() == (
        "cohort,customers,month_0,month_1,month_2\n"
        "2025-01,1,1.0,0.0,0.0\n"
        "2025-03,2,1.0,,\n"
    )


def test_kpi_csv_has_every_kpi_per_period(report):
    kpis = pd.read_csv(report["kpis"])
    assert list(kpis["period"]) == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert list(kpis["new_customers"]) == [1, 0, 2, 0]
    assert kpis["churn_rate"].isna().tolist() == [False, False, False, True]
    assert kpis["nps"].round(4).tolist()[:1] == [33.3333]
    header = report["kpis"].read_text().splitlines()[0]
    assert "customer_retention_rate" in header and "gross_revenue_retention" in header


def test_html_embeds_every_chart_and_no_external_url(report):
    page = report["html"].read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert page.count('<img src="data:image/png;base64,') == ALL_CHARTS == len(images)
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    for words in ("Customer retention rate", "30-day horizon", "Net Promoter Score", "Cohort retention",
                  "Net dollar retention", "CLV ≈ AOV × purchases per customer per year × average lifespan"):
        assert words in page


def test_running_twice_gives_the_same_bytes(tables, report, tmp_path):
    again = build_kpi_report(tables, CFG, START, END, "month", tmp_path / "again", with_backtest=False)
    for key in ("kpis", "cohorts", "html"):
        assert again[key].read_bytes() == report[key].read_bytes(), key


def test_sections_of_absent_tables_are_skipped_and_said_so(tmp_path):
    world = {k: v for k, v in report_world().items() if k in ("customers", "transactions")}
    paths = build_kpi_report(load(tmp_path / "data", world), CFG, START, END, "month", tmp_path / "out",
                             with_backtest=False)
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count('<img src="data:image/png;base64,') == CORE_CHARTS
    for section, table in [("NPS", "surveys"), ("support", "support_tickets"), ("Subscriptions", "subscriptions")]:
        assert re.search(rf"{section} skipped: no {table} table in the data", page), section
    kpis = pd.read_csv(paths["kpis"])
    assert kpis[["nps", "csat_average", "open_complaint_share", "mrr_start"]].isna().all().all()
    assert list(kpis["revenue"]) == [80.0, 0.0, 195.0, 20.0]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium; "
                                                  "the headless rendering check needs it")
def test_html_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "report.png"
    result = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
         "--dump-dom", report["html"].resolve().as_uri()],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('<img src="data:image/png;base64,') == ALL_CHARTS
    assert "Retention KPIs by month" in result.stdout
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,3000",
                    report["html"].resolve().as_uri()], capture_output=True, timeout=60, check=False)
    assert shot.exists() and shot.stat().st_size > 10_000
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def test_backtest_cutoffs_are_complete_months_and_marked_by_what_training_used():
    from pipeline.backtest import complete_cutoffs, cutoff_role

    # data until 2025-12-31, 90-day windows: the latest complete first-of-month is 2025-10-01
    assert complete_cutoffs(dt.date(2025, 12, 31), 90, dt.date(2026, 1, 1), 3) == [
        dt.date(2025, 8, 1), dt.date(2025, 9, 1), dt.date(2025, 10, 1)]
    assert complete_cutoffs(dt.date(2025, 12, 31), 90, dt.date(2025, 6, 15), 2) == [
        dt.date(2025, 5, 1), dt.date(2025, 6, 1)]
    training, validation = [dt.date(2025, 6, 3), dt.date(2025, 7, 3)], dt.date(2025, 10, 1)
    assert cutoff_role(dt.date(2025, 7, 3), training, validation) == "trained on"
    assert cutoff_role(dt.date(2025, 8, 1), training, validation) == "not trained on"
    assert cutoff_role(dt.date(2025, 10, 1), training, validation) == "validation"
    assert cutoff_role(dt.date(2025, 10, 1), [], None) == "not trained on"


def test_a_failing_backtest_leaves_the_kpi_report_standing(tables, tmp_path, monkeypatch):
    def broken_store(*args):
        raise RuntimeError("tracking store unreachable")

    monkeypatch.setattr("pipeline.report.run_backtest", broken_store)
    paths = build_kpi_report(tables, CFG, START, END, "month", tmp_path / "out")
    page = paths["html"].read_text(encoding="utf-8")
    assert "Model backtest left out: it failed (tracking store unreachable)." in page
    assert "backtest" not in paths and paths["kpis"].is_file()
