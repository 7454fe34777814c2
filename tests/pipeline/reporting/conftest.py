"""Fixtures of the reporting tests: the small world's tables, its monthly KPIs and report."""

from __future__ import annotations

import pytest

from pipeline.reporting.kpis import compute_kpis
from pipeline.reporting.report import build_kpi_report
from tests.pipeline.reporting.world import CFG, CHURN, END, START, load, report_world


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
