"""The report's building blocks: a Card (a chart or table with its definition), the
matplotlib charts drawn into cards, value formatting and the small HTML pieces (tables,
cards). Charts are PNGs embedded as data URIs (pipeline.reporting.charts), so the page opens offline."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.reporting.charts import data_uri, new_figure

Unit = Literal["count", "percent", "money", "number", "nps", "score"]
PALETTE = ["#1f5f99", "#e07b39", "#3a9a5b", "#b8403a", "#7d5ba6", "#8c6d31"]
NPS_COLOURS = ["#c0392b"] * 7 + ["#9e9e9e"] * 2 + ["#2e8b57"] * 2
MRR_MOVEMENT_COLOURS = ["#2e8b57", "#1f5f99", "#e07b39", "#c0392b"]  # new, expansion, downgrade, churned
MAX_COHORT_LINES = 6


@dataclass
class Card:
    """One box of the page: a title, a chart and/or table, and the definition under it."""

    title: str
    definition: str
    image: str | None = None  # a data URI
    note: str | None = None  # said instead of a chart when there is nothing to draw
    table: str | None = None  # extra HTML table under the chart


def esc(text: object) -> str:
    return html.escape(str(text))


def format_value(value: object, unit: Unit) -> str:
    """A value as shown on the page; "–" for a missing one."""
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
    """One line per series over the labelled periods, as a data URI."""
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
    """The cohort retention triangle as a heatmap, each cell labelled with its share."""
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
    """Answers per score 0-10: detractors red, passives grey, promoters green."""
    figure = new_figure()
    ax = figure.add_subplot()
    ax.bar(counts.index, counts.to_numpy(), color=NPS_COLOURS)
    ax.set_xticks(list(counts.index))
    ax.set_xlabel("Score")
    _style(ax, "count")
    return data_uri(figure)


# --- HTML pieces -----------------------------------------------------------------------


def html_table(header: list[str], rows: list[list[str]], first_is_label: bool = True) -> str:
    """A scrollable HTML table of already formatted cells (escaped here)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<th>{esc(c)}</th>" if i == 0 and first_is_label else f"<td>{esc(c)}</td>"
                         for i, c in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def card_html(card: Card) -> str:
    parts = [f"<h3>{esc(card.title)}</h3>"]
    if card.image:
        parts.append(f'<img src="{card.image}" alt="{esc(card.title)}">')
    if card.note:
        parts.append(f'<p class="note">{esc(card.note)}</p>')
    if card.table:
        parts.append(card.table)
    parts.append(f'<p class="definition">{esc(card.definition)}</p>')
    return '<div class="card">' + "".join(parts) + "</div>"
