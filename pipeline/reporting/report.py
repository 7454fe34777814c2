"""The KPI report: build_kpi_report writes one self-contained HTML page of retention KPIs
plus CSVs; render_html lays out the page (headline tiles, sections of cards, the table of
all figures).

The numbers come from pipeline.reporting.kpis, the cards from pipeline.reporting.sections.
The page has no external URL and no script: it opens offline, from an e-mail attachment or
a shared drive."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal

import pandas as pd

from pipeline.config import ChurnConfig, Config
from pipeline.files import atomic_write_csv, atomic_write_text
from pipeline.logs import stage
from pipeline.reporting.backtest import run_backtest
from pipeline.reporting.cards import card_html, esc, format_value, html_table
from pipeline.reporting.kpis import KpiResults, compute_kpis
from pipeline.reporting.sections import FIGURES, NAMES, UNITS, build_sections
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def build_kpi_report(
    tables: Tables, cfg: Config, start: dt.date, end: dt.date, period: Literal["month", "quarter"], out_dir: Path,
    with_backtest: bool = True,
) -> dict[str, Path]:
    """Compute the retention KPIs per period in [start, end), write out_dir/kpi_report.html
    (self-contained) and CSVs (out_dir/kpis.csv, out_dir/cohort_retention.csv and, when
    champion models exist, out_dir/backtest.csv), atomically (write beside, then rename).
    Return {'html': path, 'kpis': path, 'cohorts': path[, 'backtest': path]}."""
    paths = {"html": out_dir / "kpi_report.html", "kpis": out_dir / "kpis.csv",
             "cohorts": out_dir / "cohort_retention.csv"}
    with stage("kpi report") as info:
        results = compute_kpis(tables, cfg.churn, start, end, period)
        if with_backtest:
            try:
                results.backtest = run_backtest(tables, cfg, min(end, results.window_end))
            except Exception as exc:  # noqa: BLE001 - the KPIs do not depend on the models: report them anyway
                log.warning("model backtest failed: %s", exc)
                results.notes.append(f"Model backtest left out: it failed ({exc}).")
        # Draw first: a failing chart then leaves the previous report's files untouched.
        page = render_html(results, cfg.churn, start, end, period)
        atomic_write_csv(_for_csv(results.kpis), paths["kpis"])
        atomic_write_csv(_for_csv(results.cohort_retention), paths["cohorts"])
        if results.backtest is not None:
            paths["backtest"] = out_dir / "backtest.csv"
            atomic_write_csv(_for_csv(results.backtest.cutoffs), paths["backtest"])
            if results.backtest.forward is not None:
                paths["backtest_forward"] = out_dir / "backtest_forward.csv"
                atomic_write_csv(results.backtest.forward, paths["backtest_forward"])
        atomic_write_text(page, paths["html"])
        info["periods"], info["out_dir"] = len(results.periods), str(out_dir)
    return paths


def _for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Six decimals: enough for any rate or amount, and the same bytes on every platform."""
    return frame.round(6)


# --- page ------------------------------------------------------------------------------


def _figures_table(results: KpiResults) -> str:
    kpis = results.kpis
    header = ["KPI"] + [p.label + ("" if full else "*") for p, full in zip(results.periods, kpis["fully_observed"],
                                                                           strict=True)]
    rows = [[name] + [format_value(v, unit) for v in kpis[column]]
            for column, name, unit in FIGURES if not kpis[column].isna().all()]
    return html_table(header, rows)


HEADLINES = ["customers_at_end", "customer_retention_rate", "churn_rate", "revenue", "nps", "net_dollar_retention"]


def _headlines(results: KpiResults) -> str:
    """Big numbers first: the latest fully observed value of a few KPIs and its change."""
    observed = results.kpis[results.kpis["fully_observed"]]
    tiles = []
    for column in HEADLINES:
        values = observed[["period", column]].dropna()
        if values.empty:
            continue
        period, latest = values.iloc[-1]
        change = ""
        if len(values) > 1:
            delta = float(latest) - float(values.iloc[-2][column])
            unit = UNITS[column]
            shown = f"{delta * 100:+.1f} pts" if unit == "percent" else format_value(delta, unit)
            if unit != "nps" and unit != "percent" and delta >= 0:
                shown = "+" + shown
            change = f'<span class="change">{esc(shown)} vs {esc(values.iloc[-2]["period"])}</span>'
        tiles.append(f'<div class="tile"><span class="label">{esc(NAMES[column])}, {esc(period)}</span>'
                     f'<span class="value">{esc(format_value(latest, UNITS[column]))}</span>{change}</div>')
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


def render_html(results: KpiResults, churn: ChurnConfig, start: dt.date, end: dt.date, period: str) -> str:
    sections = build_sections(results, churn)
    body = [
        f"<h1>Retention KPIs by {esc(period)}</h1>",
        f'<p class="lead">Report window {results.window_start} to {results.window_end} (exclusive), requested '
        f"{start} to {end}; the data ends on {results.data_end}. Churn definition: "
        f"<b>{esc(churn.definition)}</b>, {churn.horizon_days}-day horizon. Periods marked * are not fully "
        "covered by the data.</p>",
    ]
    notes = list(results.notes) + [f"{section} skipped: {why}." for section, why in results.skipped.items()]
    if notes:
        body.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    body.append(_headlines(results))
    for title, cards in sections:
        body.append(f"<h2>{esc(title)}</h2>")
        body.append('<div class="grid">' + "".join(card_html(c) for c in cards) + "</div>")
    body.append("<h2>All figures</h2>")
    body.append('<p class="lead">Every figure per period; the same numbers are in kpis.csv and '
                "cohort_retention.csv beside this page.</p>")
    body.append(_figures_table(results))
    return _PAGE.format(title=esc(f"Retention KPIs {results.window_start} to {results.window_end}"),
                        body="\n".join(body))


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1500px; padding: 0 1rem; color: #222; background: #fafafa; }}
h1 {{ margin-bottom: 0.2rem; }}
h2 {{ margin-top: 2.2rem; border-bottom: 2px solid #1f5f99; padding-bottom: 0.2rem; }}
h3 {{ margin: 0 0 0.5rem 0; font-size: 1.05rem; }}
.lead {{ color: #444; }}
.notes {{ background: #fff8e1; border-left: 4px solid #e0a800; padding: 0.6rem 1.8rem; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1rem; }}
.card {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 1rem; }}
.card img {{ max-width: 100%; height: auto; display: block; }}
.definition {{ font-size: 0.88rem; color: #555; margin-bottom: 0; }}
.note {{ font-style: italic; color: #8a6d00; }}
.scroll {{ overflow-x: auto; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 1rem; margin: 1.2rem 0; }}
.tile {{ background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 0.7rem 1rem; min-width: 12rem; }}
.tile span {{ display: block; }}
.tile .label {{ font-size: 0.85rem; color: #555; }}
.tile .value {{ font-size: 1.8rem; font-weight: 600; color: #1f5f99; }}
.tile .change {{ font-size: 0.8rem; color: #777; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }}
th, td {{ padding: 0.25rem 0.6rem; border-bottom: 1px solid #e3e3e3; white-space: nowrap; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
tbody th {{ text-align: left; font-weight: normal; }}
tbody tr:nth-child(even) {{ background: #f4f7fa; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""
