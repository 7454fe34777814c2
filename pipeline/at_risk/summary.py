"""summary.html beside the at-risk list: one page for marketing, readable offline.

Tier counts, value at risk by segment and tier, the most common reasons, and the score
distribution of tonight's customers next to the one the model was validated on."""

from __future__ import annotations

import datetime as dt
import html

import numpy as np
import pandas as pd

from pipeline.at_risk.tiers import TIER_COLOURS, TIERS
from pipeline.charts import data_uri, new_figure


def value_at_risk_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Value at risk (sum) by segment (rows) and tier (columns), with totals."""
    table = scored.pivot_table(index="segment", columns="risk_tier", values="value_at_risk", aggfunc="sum",
                              fill_value=0.0).reindex(columns=TIERS, fill_value=0.0)
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).round(2)


def common_reasons(scored: pd.DataFrame, top: int = 10) -> pd.Series:
    """How often each reason appears, numbers masked so that alike reasons count together
    ("no purchase for # days (usually every #)")."""
    reasons = scored["top_reasons"].fillna("").str.split("; ").explode()
    reasons = reasons[reasons.str.len() > 0].str.replace(r"[\d.,]+", "#", regex=True)
    return reasons.value_counts().head(top)


def _tier_chart(scored: pd.DataFrame) -> str:
    figure = new_figure(5.5, 2.8, fit=True)
    ax = figure.add_subplot()
    counts = scored["risk_tier"].value_counts().reindex(TIERS, fill_value=0)
    ax.bar(counts.index, counts.to_numpy(), color=[TIER_COLOURS[t] for t in counts.index])
    ax.set(ylabel="customers", title="Customers per risk tier")
    return data_uri(figure)


def _segment_chart(table: pd.DataFrame) -> str:
    figure = new_figure(7.2, 3.2, fit=True)
    ax = figure.add_subplot()
    left = np.zeros(len(table))
    for tier in TIERS:
        ax.barh(table.index, table[tier], left=left, color=TIER_COLOURS[tier], label=tier)
        left += table[tier].to_numpy()
    ax.invert_yaxis()
    ax.set(xlabel="value at risk", title="Value at risk by segment and tier")
    ax.legend(loc="lower right")
    return data_uri(figure)


def _reasons_chart(reasons: pd.Series) -> str:
    figure = new_figure(7.2, 0.3 * len(reasons) + 1.0, fit=True)
    ax = figure.add_subplot()
    ax.barh(reasons.index[::-1], reasons.to_numpy()[::-1], color="#4c72b0")
    ax.set(xlabel="customers", title="Most common reasons (# = a number)")
    return data_uri(figure)


def _distribution_chart(probability: np.ndarray, reference: dict) -> str:
    """Share of customers per training decile of the churn probability, now vs training."""
    edges = np.asarray(reference["edges"])
    then = np.asarray(reference["shares"])[:-1]  # the last share is for missing scores
    now = np.bincount(np.searchsorted(edges, probability, side="right"), minlength=len(edges) + 1) / len(probability)
    figure = new_figure(7.2, 3.0, fit=True)
    ax = figure.add_subplot()
    x = np.arange(len(then))
    ax.bar(x - 0.2, then, width=0.4, label="validation (training time)", color="#8c8c8c")
    ax.bar(x + 0.2, now, width=0.4, label="tonight", color="#4c72b0")
    ax.set(xlabel="churn probability band (training deciles, low to high)", ylabel="share of customers",
           title="Score distribution, tonight vs training")
    ax.legend()
    return data_uri(figure)


def render_summary(scored: pd.DataFrame, as_of: dt.date, manifest: dict, reference: dict | None) -> str:
    table = value_at_risk_table(scored)
    reasons = common_reasons(scored)
    tiers = manifest["customers_per_tier"]
    rows = "".join(
        f"<tr><th>{html.escape(str(seg))}</th>" + "".join(f"<td>{v:,.0f}</td>" for v in values) + "</tr>"
        for seg, values in zip(table.index, table.to_numpy(), strict=True))
    charts = [_tier_chart(scored), _segment_chart(table), _reasons_chart(reasons)]
    if reference is not None:
        charts.append(_distribution_chart(scored["churn_probability"].to_numpy(), reference))
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in manifest.get("warnings", [])) or "<li>none</li>"
    images = "".join(f'<p><img src="{uri}" alt="chart"></p>' for uri in charts)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>At-risk customers {as_of}</title>
<style>body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}
th:first-child{{text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>At-risk customers as of {as_of}</h1>
<p><b>{manifest['customers_scored']:,}</b> active customers scored: <b>{tiers['high']:,}</b> high,
{tiers['medium']:,} medium and {tiers['low']:,} low risk. Value at risk (churn probability x predicted
CLV, summed): <b>{manifest['total_value_at_risk']:,.0f}</b>.</p>
<h2>Value at risk by segment and tier</h2>
<table><tr><th>segment</th>{''.join(f'<th>{t}</th>' for t in [*TIERS, 'total'])}</tr>{rows}</table>
{images}
<h2>Warnings</h2><ul>{warnings}</ul>
<p>Models: {html.escape(', '.join(f"{k} v{v['version']}" for k, v in manifest['models'].items()))}.
The list itself is at_risk.csv beside this page.</p></body></html>"""
