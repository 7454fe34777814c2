"""The KPI report: one self-contained HTML page of retention KPIs, plus two CSVs.

The numbers come from pipeline.report_kpis; this module draws them and writes the files.
Charts are matplotlib PNGs embedded as base64 data URIs, so the page opens offline, from
an e-mail attachment or a shared drive, with no external URL and no script."""

from __future__ import annotations

import datetime as dt
import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.backtest import Backtest, run_backtest
from pipeline.charts import data_uri, new_figure
from pipeline.config import ChurnConfig, Config
from pipeline.files import atomic_write_csv, atomic_write_text
from pipeline.logs import stage
from pipeline.report_kpis import KpiResults, compute_kpis, kpi_definitions
from pipeline.tables import Tables

Unit = Literal["count", "percent", "money", "number", "nps", "score"]
log = logging.getLogger(__name__)
PALETTE = ["#1f5f99", "#e07b39", "#3a9a5b", "#b8403a", "#7d5ba6", "#8c6d31"]
NPS_COLOURS = ["#c0392b"] * 7 + ["#9e9e9e"] * 2 + ["#2e8b57"] * 2
MRR_MOVEMENT_COLOURS = ["#2e8b57", "#1f5f99", "#e07b39", "#c0392b"]  # new, expansion, downgrade, churned
MAX_COHORT_LINES = 6

# Every column of kpis.csv shown in the figures table: display name and unit.
FIGURES: list[tuple[str, str, Unit]] = [
    ("customers_at_start", "Customers at start", "count"),
    ("customers_at_end", "Customers at end", "count"),
    ("new_customers", "New customers", "count"),
    ("customer_retention_rate", "Customer retention rate", "percent"),
    ("churned_customers", "Churned customers", "count"),
    ("churn_rate", "Churn rate", "percent"),
    ("repeat_purchase_rate", "Repeat-purchase rate", "percent"),
    ("purchases", "Purchases", "count"),
    ("purchasing_customers", "Purchasing customers", "count"),
    ("purchase_frequency", "Purchase frequency", "number"),
    ("revenue", "Revenue", "money"),
    ("revenue_per_purchasing_customer", "Revenue per purchasing customer", "money"),
    ("average_order_value", "Average order value", "money"),
    ("nps", "NPS", "nps"),
    ("nps_responses", "NPS answers", "count"),
    ("nps_promoters", "Promoters", "count"),
    ("nps_detractors", "Detractors", "count"),
    ("tickets_resolved", "Tickets resolved", "count"),
    ("csat_average", "CSAT average", "score"),
    ("csat_responses", "CSAT answers", "count"),
    ("ces_average", "CES average", "score"),
    ("ces_responses", "CES answers", "count"),
    ("open_complaint_share", "Active customers with an open complaint", "percent"),
    ("mrr_start", "MRR at start", "money"),
    ("mrr_end", "MRR at end", "money"),
    ("new_mrr", "New MRR", "money"),
    ("expansion_mrr", "Expansion MRR", "money"),
    ("downgrade_mrr", "Downgrade MRR", "money"),
    ("churned_mrr", "Churned MRR", "money"),
    ("net_dollar_retention", "Net dollar retention", "percent"),
    ("gross_revenue_retention", "Gross revenue retention", "percent"),
]
UNITS: dict[str, Unit] = {column: unit for column, _, unit in FIGURES}
NAMES: dict[str, str] = {column: name for column, name, _ in FIGURES}


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
        atomic_write_text(page, paths["html"])
        info["periods"], info["out_dir"] = len(results.periods), str(out_dir)
    return paths


def _for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Six decimals: enough for any rate or amount, and the same bytes on every platform."""
    return frame.round(6)


# --- charts ----------------------------------------------------------------------------


def _style(ax, unit: Unit) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    if unit == "percent":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    elif unit == "count":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    elif unit == "money":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    elif unit == "nps":
        ax.axhline(0, color="#555555", linewidth=0.8)


def _percent_limits(ax, values: pd.Series) -> None:
    """Zoom in on the values but keep at least 10 points of range: a rate moving from
    93.1% to 93.4% should look flat, not like a cliff."""
    low, high = float(values.min()), float(values.max())
    if high - low < 0.10:
        middle = (low + high) / 2
        low, high = middle - 0.05, middle + 0.05
    pad = (high - low) * 0.08
    bottom, top = low - pad, high + pad
    # Slide the range rather than show impossible values: below 0%, or above 100% when no
    # value exceeds it (retention can, through reactivated customers).
    ceiling = 1.0 if float(values.max()) <= 1.0 else np.inf
    shift = max(0.0, -bottom) - max(0.0, top - ceiling)
    ax.set_ylim(max(0.0, bottom + shift), min(ceiling, top + shift))


def line_chart(labels: list[str], series: dict[str, pd.Series], unit: Unit, colours: list[str] | None = None) -> str:
    figure = new_figure()
    ax = figure.add_subplot()
    x = np.arange(len(labels))
    for (name, values), colour in zip(series.items(), colours or PALETTE, strict=False):
        ax.plot(x, pd.Series(values).astype(float).to_numpy(), marker="o", color=colour, label=name,
                clip_on=False)  # a point on the 0% or 100% edge stays whole
    step = max(1, len(labels) // 16)  # at most ~16 labels keep the axis legible
    ax.set_xticks(x[::step], labels[::step], rotation=45 if len(labels) > 8 else 0, ha="right" if len(labels) > 8
                  else "center")
    _style(ax, unit)
    if unit in ("count", "money"):
        ax.set_ylim(bottom=0)
    elif unit == "percent":
        _percent_limits(ax, pd.concat([pd.Series(v, dtype=float) for v in series.values()]))
    if len(series) > 1:
        ax.legend(frameon=False, loc="best")
    return data_uri(figure)


def cohort_heatmap(triangle: pd.DataFrame) -> str:
    from matplotlib.ticker import PercentFormatter

    values = triangle.filter(like="month_").to_numpy(dtype=float)
    rows, cols = values.shape
    figure = new_figure(width=min(2.5 + 0.55 * cols, 11), height=min(1.2 + 0.32 * rows, 12), fit=True)
    ax = figure.add_subplot()
    later = values[:, 1:]
    # Month 0 is 100% by construction; scaling to it would wash out every later month.
    top = float(np.nanmax(later)) if np.isfinite(later).any() and np.nanmax(later) > 0 else 1.0
    image = ax.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0, vmax=top, aspect="auto")
    if rows * cols <= 600:
        for (r, c), value in np.ndenumerate(values):
            if np.isfinite(value):
                ax.text(c, r, f"{value:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if value > 0.6 * top else "#222222")
    ax.set_xticks(range(cols), [str(n) for n in range(cols)])
    ax.set_yticks(range(rows), [f"{c} (n={n})" for c, n in zip(triangle["cohort"], triangle["customers"],
                                                                  strict=True)])
    ax.set_xlabel("Months since first purchase")
    figure.colorbar(image, ax=ax, format=PercentFormatter(1.0, decimals=0), shrink=0.8)
    return data_uri(figure)


def cohort_revenue_chart(cumulative: pd.DataFrame) -> str:
    """Cumulative revenue per customer for a few cohorts spread over the window."""
    picks = np.unique(np.linspace(0, len(cumulative) - 1, min(len(cumulative), MAX_COHORT_LINES)).round().astype(int))
    figure = new_figure()
    ax = figure.add_subplot()
    months = cumulative.filter(like="month_")
    for index, colour in zip(picks, PALETTE, strict=False):
        ax.plot(range(months.shape[1]), months.iloc[index].to_numpy(dtype=float), marker="o", color=colour,
                label=f"{cumulative['cohort'].iloc[index]} (n={cumulative['customers'].iloc[index]})")
    ax.set_xlabel("Months since first purchase")
    ax.set_xticks(range(months.shape[1]))
    _style(ax, "money")
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(months.to_numpy(dtype=float)))))
    ax.legend(frameon=False, fontsize=8)
    return data_uri(figure)


def nps_distribution_chart(counts: pd.Series) -> str:
    figure = new_figure()
    ax = figure.add_subplot()
    ax.bar(counts.index, counts.to_numpy(), color=NPS_COLOURS)
    ax.set_xticks(list(counts.index))
    ax.set_xlabel("Score")
    _style(ax, "count")
    return data_uri(figure)


# --- page ------------------------------------------------------------------------------


@dataclass
class Card:
    title: str
    definition: str
    image: str | None = None  # a data URI
    note: str | None = None  # said instead of a chart when there is nothing to draw
    table: str | None = None  # extra HTML table under the chart


def _esc(text: object) -> str:
    return html.escape(str(text))


def format_value(value: object, unit: Unit) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "–"
    value = float(value)
    return {
        "count": f"{value:,.0f}",
        "percent": f"{value:.1%}",
        "money": f"{value:,.2f}",
        "number": f"{value:,.2f}",
        "nps": f"{value:+.1f}",
        "score": f"{value:.2f}",
    }[unit]


def _line_card(results: KpiResults, labels: list[str], title: str, columns: list[str], definition: str,
               unit: Unit, colours: list[str] | None = None) -> Card:
    series = {NAMES[c]: results.kpis[c] for c in columns}
    if all(pd.Series(values).isna().all() for values in series.values()):
        return Card(title, definition, note="No value in this report window (see the definition).")
    return Card(title, definition, image=line_chart(labels, series, unit, colours))


def build_sections(results: KpiResults, churn: ChurnConfig) -> list[tuple[str, list[Card]]]:
    d = kpi_definitions(churn, results.data_end)
    labels = [p.label + ("" if full else "*") for p, full in zip(results.periods, results.kpis["fully_observed"],
                                                                  strict=True)]

    def line(title: str, columns: list[str], definition: str, unit: Unit, colours: list[str] | None = None) -> Card:
        return _line_card(results, labels, title, columns, definition, unit, colours)

    sections = [
        ("Customers and retention", [
            line("Customers", ["customers_at_start", "customers_at_end", "new_customers"], d["customers"], "count"),
            line("Customer retention rate", ["customer_retention_rate"], d["customer_retention_rate"], "percent"),
            line(f"Churn rate ({churn.horizon_days}-day horizon)", ["churn_rate"], d["churn_rate"], "percent"),
        ]),
        ("Purchasing", [
            line("Repeat-purchase rate", ["repeat_purchase_rate"], d["repeat_purchase_rate"], "percent"),
            line("Purchase frequency", ["purchase_frequency"], d["purchase_frequency"], "number"),
            line("Revenue", ["revenue"], d["revenue"], "money"),
            line("Revenue per purchasing customer", ["revenue_per_purchasing_customer"],
                 d["revenue_per_purchasing_customer"], "money"),
            line("Average order value", ["average_order_value"], d["average_order_value"], "money"),
        ]),
    ]
    if "Cohorts" not in results.skipped:
        sections.append(("Cohorts and lifetime value", [
            Card("Cohort retention", d["cohort_retention"], image=cohort_heatmap(results.cohort_retention)),
            Card("Cumulative revenue per customer (historical CLV)", d["cohort_revenue"],
                 image=cohort_revenue_chart(results.cohort_revenue), table=_cohort_revenue_table(results)),
            Card("Lifetime value, practice formula", d["practice_clv"], table=_practice_clv_table(results)),
        ]))
    if "Customer voice: NPS" not in results.skipped:
        distribution = results.nps_distribution
        sections.append(("Customer voice: NPS", [
            line("Net Promoter Score", ["nps"], d["nps"], "nps"),
            Card("NPS answers by score", d["nps_distribution"],
                 image=nps_distribution_chart(distribution) if distribution.sum() else None,
                 note=None if distribution.sum() else "No survey answer in this report window."),
        ]))
    if "Customer voice: support" not in results.skipped:
        sections.append(("Customer voice: support", [
            line("CSAT average", ["csat_average"], d["csat_average"], "score"),
            line("CES average", ["ces_average"], d["ces_average"], "score"),
            line("Active customers with an open complaint", ["open_complaint_share"], d["open_complaint_share"],
                 "percent"),
        ]))
    if "Subscriptions" not in results.skipped:
        sections.append(("Subscriptions", [
            line("MRR", ["mrr_start", "mrr_end"], d["mrr"], "money"),
            line("MRR movements", ["new_mrr", "expansion_mrr", "downgrade_mrr", "churned_mrr"], d["mrr_movements"],
                 "money", colours=MRR_MOVEMENT_COLOURS),
            line("Net dollar and gross revenue retention", ["net_dollar_retention", "gross_revenue_retention"],
                 d["retention_of_mrr"], "percent"),
        ]))
    if results.backtest is not None:
        sections.append(("Model backtest", backtest_cards(results.backtest, churn)))
    return sections


def backtest_cards(backtest: Backtest, churn: ChurnConfig) -> list[Card]:
    table = backtest.cutoffs
    labels = [f"{c:%Y-%m-%d}" + ("" if role == "not trained on" else "†")
              for c, role in zip(table["cutoff_date"], table["role"], strict=True)]
    ahead = backtest.forecast
    lead = (f"From {ahead['as_of']}, {format_value(ahead['customers'], 'count')} active customers: predicted churn "
            f"rate {format_value(ahead.get('predicted_churn_rate'), 'percent')} over the next {churn.horizon_days} "
            f"days, predicted revenue {format_value(ahead.get('predicted_revenue'), 'money')}.")
    definition = (f"Champions {backtest.churn_model} and {backtest.clv_model}, applied at past cutoffs whose "
                  f"label window is complete: the mean predicted churn probability of the customers active at "
                  "the cutoff against the share of them who churned, by the definition the models are trained "
                  "on. † marks cutoffs whose rows the training run used (to fit, calibrate or validate); the "
                  "others it never saw. " + lead)
    churn_card = Card("Predicted vs realised churn rate", definition, image=line_chart(labels, {
        "Predicted churn rate": table["predicted_churn_rate"], "Realised churn rate": table["realised_churn_rate"],
    }, "percent"))
    rows = [[f"{r.cutoff_date:%Y-%m-%d}", r.role, format_value(r.customers, "count"),
             format_value(r.predicted_churn_rate, "percent"), format_value(r.realised_churn_rate, "percent"),
             format_value(r.predicted_revenue, "money"), format_value(r.realised_revenue, "money")]
            for r in table.itertuples()]
    revenue_card = Card("Predicted vs realised revenue", "Sum of the CLV model's predictions for the customers "
                        "active at each cutoff against the revenue they then brought in over the CLV horizon "
                        "(– where that window is not complete yet).", image=line_chart(labels, {
                            "Predicted revenue": table["predicted_revenue"],
                            "Realised revenue": table["realised_revenue"]}, "money"),
                        table=_table(["Cutoff", "Role", "Customers", "Predicted churn", "Realised churn",
                                      "Predicted revenue", "Realised revenue"], rows))
    return [churn_card, revenue_card]


def _table(header: list[str], rows: list[list[str]], first_is_label: bool = True) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<th>{_esc(c)}</th>" if i == 0 and first_is_label else f"<td>{_esc(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _practice_clv_table(results: KpiResults) -> str:
    clv = results.practice_clv
    rows = [
        ["Average order value", format_value(clv["average_order_value"], "money")],
        ["Purchases per customer per year", format_value(clv["purchases_per_customer_per_year"], "number")],
        ["Pooled churn rate (per horizon)", format_value(clv["pooled_churn_rate"], "percent")],
        ["Average lifespan (years)", format_value(clv["average_lifespan_years"], "number")],
        ["CLV", format_value(clv["clv"], "money")],
    ]
    ahead = results.backtest.forecast if results.backtest is not None else {}
    if ahead.get("customers"):  # the CLV model's view, beside the formula
        per_customer = ahead["predicted_revenue"] / ahead["customers"]
        rows.append([f"Model: predicted revenue per active customer, next {ahead['clv_horizon_days']} days "
                     f"(from {ahead['as_of']})", format_value(per_customer, "money")])
    return _table(["Figure", "Value"], rows)


def _cohort_revenue_table(results: KpiResults) -> str:
    """Cumulative revenue per customer after 1, 3, 6 and 12 months, where observed."""
    frame = results.cohort_revenue
    marks = [n for n in (1, 3, 6, 12) if f"month_{n - 1}" in frame]
    rows = [[row["cohort"], format_value(row["customers"], "count")]
            + [format_value(row[f"month_{n - 1}"], "money") for n in marks] for _, row in frame.iterrows()]
    return _table(["Cohort", "Customers"] + [f"After {n} month{'s' if n > 1 else ''}" for n in marks], rows)


def _figures_table(results: KpiResults) -> str:
    kpis = results.kpis
    header = ["KPI"] + [p.label + ("" if full else "*") for p, full in zip(results.periods, kpis["fully_observed"],
                                                                           strict=True)]
    rows = [[name] + [format_value(v, unit) for v in kpis[column]]
            for column, name, unit in FIGURES if not kpis[column].isna().all()]
    return _table(header, rows)


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
            change = f'<span class="change">{_esc(shown)} vs {_esc(values.iloc[-2]["period"])}</span>'
        tiles.append(f'<div class="tile"><span class="label">{_esc(NAMES[column])}, {_esc(period)}</span>'
                     f'<span class="value">{_esc(format_value(latest, UNITS[column]))}</span>{change}</div>')
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


def _card_html(card: Card) -> str:
    parts = [f"<h3>{_esc(card.title)}</h3>"]
    if card.image:
        parts.append(f'<img src="{card.image}" alt="{_esc(card.title)}">')
    if card.note:
        parts.append(f'<p class="note">{_esc(card.note)}</p>')
    if card.table:
        parts.append(card.table)
    parts.append(f'<p class="definition">{_esc(card.definition)}</p>')
    return '<div class="card">' + "".join(parts) + "</div>"


def render_html(results: KpiResults, churn: ChurnConfig, start: dt.date, end: dt.date, period: str) -> str:
    sections = build_sections(results, churn)
    body = [
        f"<h1>Retention KPIs by {_esc(period)}</h1>",
        f'<p class="lead">Report window {results.window_start} to {results.window_end} (exclusive), requested '
        f"{start} to {end}; the data ends on {results.data_end}. Churn definition: "
        f"<b>{_esc(churn.definition)}</b>, {churn.horizon_days}-day horizon. Periods marked * are not fully "
        "covered by the data.</p>",
    ]
    notes = list(results.notes) + [f"{section} skipped: {why}." for section, why in results.skipped.items()]
    if notes:
        body.append('<ul class="notes">' + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>")
    body.append(_headlines(results))
    for title, cards in sections:
        body.append(f"<h2>{_esc(title)}</h2>")
        body.append('<div class="grid">' + "".join(_card_html(c) for c in cards) + "</div>")
    body.append("<h2>All figures</h2>")
    body.append('<p class="lead">Every figure per period; the same numbers are in kpis.csv and '
                "cohort_retention.csv beside this page.</p>")
    body.append(_figures_table(results))
    return _PAGE.format(title=_esc(f"Retention KPIs {results.window_start} to {results.window_end}"),
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
