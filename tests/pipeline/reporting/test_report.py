"""The KPI report's files: the HTML page is self-contained (every chart embedded, no
external URL) and shows the figures computed by hand, the CSVs are stable, absent tables
and a failing backtest leave the rest of the report standing. The world is
tests/pipeline/reporting/world.py."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipeline.reporting.report import build_kpi_report
from tests.pipeline.reporting.world import CFG, END, START, load, report_world

ALL_CHARTS = 18  # customers 3 + purchasing 5 + cohorts 2 + NPS 2 + support 3 + subscriptions 3
CORE_CHARTS = 10  # without surveys, support tickets and subscriptions


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
                  "Net dollar retention", "CLV ≈ AOV × purchases per customer per year × average lifespan",
                  "Average lifespan: 1 ÷ that rate horizons of 30 days, in years"):
        assert words in page


def test_html_shows_the_practice_clv_computed_by_hand(report):
    # The practice formula on the world (see test_kpis.test_practice_clv): pooled churn 2/3
    # per 30 days, a lifespan of 45 days = 0.12 years; CLV = 295 x 45 / (4 x 110) = 30.17.
    page = report["html"].read_text(encoding="utf-8")
    table = page[page.index("<h3>Lifetime value, practice formula</h3>"):]
    table = table[:table.index("</table>")]
    cells = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]+)</td></tr>", table))
    assert cells == {
        "Average order value": "42.14",  # 295 / 7
        "Purchases per customer per year": "5.81",  # 7 / 4 x 365 / 110
        "Pooled churn rate (per horizon)": "66.7%",
        "Average lifespan (years)": "0.12",
        "CLV": "30.17",
    }


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


def test_a_failing_backtest_leaves_the_kpi_report_standing(tables, tmp_path, monkeypatch):
    def broken_store(*args):
        raise RuntimeError("tracking store unreachable")

    monkeypatch.setattr("pipeline.reporting.report.run_backtest", broken_store)
    paths = build_kpi_report(tables, CFG, START, END, "month", tmp_path / "out")
    page = paths["html"].read_text(encoding="utf-8")
    assert "Model backtest left out: it failed (tracking store unreachable)." in page
    assert "backtest" not in paths and paths["kpis"].is_file()
