"""summary.html beside the at-risk list: one page for marketing, readable offline.

Tier counts, value at risk (in the list's currency) by segment and tier, the most common
reasons in plain words, and how tonight's customers spread over churn probability next to
the customers of the model's freshest training cutoff. Every chart is also said in words, in its
caption and its alt text, so that the page reads without the pictures."""

from __future__ import annotations

import datetime as dt
import html
import re

import numpy as np
import pandas as pd

from pipeline.at_risk.tiers import TIER_COLOURS, TIERS
from pipeline.reporting.charts import data_uri, new_figure

# A number inside a reason text: "94", "0.6", "-20" (a refund-heavy spend).
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
MASK = "\0"  # stands for a number while alike reasons are counted together; never shown


def value_at_risk_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Value at risk (sum) by segment (rows) and tier (columns), with totals."""
    table = scored.pivot_table(index="segment", columns="risk_tier", values="value_at_risk", aggfunc="sum",
                              fill_value=0.0).reindex(columns=TIERS, fill_value=0.0)
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).round(2)


def common_reasons(scored: pd.DataFrame, top: int = 10) -> pd.Series:
    """How many customers carry each kind of reason, most common first. Reasons that differ
    only in their numbers count together and are shown with the range of those numbers,
    e.g. "no purchase for 45–210 days (usually every 12–60)"."""
    reasons = scored["top_reasons"].fillna("").astype(str).str.split("; ").explode()
    texts = reasons[reasons.str.len() > 0].value_counts()  # each distinct text once: far fewer than rows
    if texts.empty:
        return pd.Series(dtype="int64", name="customers")
    members: dict[str, list[str]] = {}
    for text in texts.index:
        members.setdefault(NUMBER.sub(MASK, text), []).append(text)
    counts = {kind: int(texts[found].sum()) for kind, found in members.items()}
    order = sorted(counts, key=lambda kind: (-counts[kind], kind))[:top]
    return pd.Series([counts[kind] for kind in order], index=[_with_ranges(kind, members[kind]) for kind in order],
                     name="customers", dtype="int64")


def _with_ranges(kind: str, texts: list[str]) -> str:
    """`kind` with each masked number replaced by the smallest and largest it takes in `texts`."""
    numbers = [NUMBER.findall(text) for text in texts]
    shown = []
    for position in range(kind.count(MASK)):
        found = sorted({n[position] for n in numbers}, key=float)
        shown.append(found[0] if len(found) == 1 else f"{found[0]}–{found[-1]}")
    parts = kind.split(MASK)
    return "".join(part + (shown[i] if i < len(shown) else "") for i, part in enumerate(parts))


def money(amount: float, currency: str) -> str:
    return f"{amount:,.0f} {currency}"


def _tier_chart(scored: pd.DataFrame) -> str:
    figure = new_figure(5.5, 2.8, fit=True)
    ax = figure.add_subplot()
    counts = scored["risk_tier"].value_counts().reindex(TIERS, fill_value=0)
    ax.bar(counts.index, counts.to_numpy(), color=[TIER_COLOURS[t] for t in counts.index])
    ax.set(ylabel="customers", title="Customers per risk tier")
    return data_uri(figure)


def _segment_chart(table: pd.DataFrame, currency: str) -> str:
    figure = new_figure(7.2, 3.2, fit=True)
    ax = figure.add_subplot()
    left = np.zeros(len(table))
    for tier in TIERS:
        ax.barh(table.index, table[tier], left=left, color=TIER_COLOURS[tier], label=tier)
        left += table[tier].to_numpy()
    ax.invert_yaxis()
    ax.set(xlabel=f"value at risk ({currency})", title="Value at risk by segment and tier")
    ax.legend(loc="lower right")
    return data_uri(figure)


def _reasons_chart(reasons: pd.Series) -> str:
    figure = new_figure(7.2, 0.3 * len(reasons) + 1.0, fit=True)
    ax = figure.add_subplot()
    ax.barh(reasons.index[::-1], reasons.to_numpy()[::-1], color="#4c72b0")
    ax.set(xlabel="customers")
    figure.suptitle("Most common reasons for the risk")  # over the whole figure: the labels are long
    return data_uri(figure)


def percent_edges(edges) -> list[str]:
    """Band edges as percentages, with as few decimals as keep neighbouring edges apart."""
    edges = np.asarray(edges, dtype=float)
    decimals = next((d for d in range(4) if len(set(np.round(100 * edges, d))) == len(edges)), 4)
    return [f"{100 * edge:.{decimals}f}%" for edge in edges]


def probability_bands(edges) -> list[str]:
    """Names of the churn-probability bands that `edges` cut: "under 3%", "3–5%", ...,
    "80% or more"."""
    shown = percent_edges(edges)
    if not shown:
        return ["all customers"]
    middle = [f"{low[:-1]}–{high}" for low, high in zip(shown, shown[1:], strict=False)]
    return [f"under {shown[0]}", *middle, f"{shown[-1]} or more"]


def distribution_figure(probability: np.ndarray, reference: dict):
    """Share of customers per churn-probability band, tonight beside the customers of the
    model's freshest training cutoff (the bands hold a tenth of those customers each).
    Returns the figure and the shares (training, tonight)."""
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    edges = np.asarray(reference["edges"])
    then = np.asarray(reference["shares"])[:-1]  # the last share is for missing scores
    now = np.bincount(np.searchsorted(edges, probability, side="right"), minlength=len(edges) + 1)
    now = now / max(len(probability), 1)
    figure = new_figure(7.2, 3.4, fit=True)
    ax = figure.add_subplot()
    x = np.arange(len(then))
    ax.bar(x - 0.2, then, width=0.4, label="customers at training", color="#8c8c8c")
    ax.bar(x + 0.2, now, width=0.4, label="customers tonight", color="#4c72b0")
    ax.set_xticks(x, probability_bands(edges), rotation=30, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(steps=[1, 2, 5, 10]))  # whole percentages: 0%, 2%, 4%, ...
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set(xlabel="churn probability", ylabel="share of customers",
           title="Share of customers by churn probability, tonight vs training")
    figure.legend(loc="outside lower center", ncols=2, frameon=False)  # under the chart: never over a bar
    return figure, then, now


def _distribution_words(then: np.ndarray, now: np.ndarray, edges) -> str:
    said = ("Share of customers by churn probability, tonight against the customers of the model's freshest "
            "training cutoff, in bands that each held about a tenth of those customers.")
    shown = percent_edges(edges)
    if not shown:
        return said
    top = len(then) - max(len(then) // 5, 1)  # the highest fifth of the bands: two of ten
    return (f"{said} A churn probability of {shown[top - 1]} or more: {float(then[top:].sum()):.0%} of customers "
            f"at training, {float(now[top:].sum()):.0%} tonight. Far more tonight means more customers look at "
            f"risk than when the model learned; the warnings below say whether the scores have shifted.")


def _figure(uri: str, words: str) -> str:
    said = html.escape(words)
    return f'<figure><img src="{uri}" alt="{said}"><figcaption>{said}</figcaption></figure>'


def _tier_counts(counts: dict[str, int]) -> str:
    """'<b>12</b> high, 30 medium and 958 low risk': every tier of the registry, the highest bold."""
    said = [f"{counts.get(tier, 0):,} {tier}" for tier in TIERS]
    said[0] = f"<b>{said[0].split(' ')[0]}</b> {TIERS[0]}"
    return (", ".join(said[:-1]) + " and " + said[-1] if len(said) > 1 else said[0]) + " risk"


def render_summary(scored: pd.DataFrame, as_of: dt.date, manifest: dict, reference: dict | None) -> str:
    currency = manifest["currency"]
    table = value_at_risk_table(scored)
    reasons = common_reasons(scored)
    tiers = manifest["customers_per_tier"]
    rows = "".join(
        f"<tr><th>{html.escape(str(seg))}</th>" + "".join(f"<td>{money(v, currency)}</td>" for v in values) + "</tr>"
        for seg, values in zip(table.index, table.to_numpy(), strict=True))
    tier_words = ", ".join(f"{tiers.get(t, 0):,} {t} risk" for t in TIERS)
    figures = [
        _figure(_tier_chart(scored), f"Customers per risk tier: {tier_words}."),
        _figure(_segment_chart(table, currency), "Value at risk by segment and tier, in " + currency + ": "
                + "; ".join(f"{seg} {money(total, currency)}" for seg, total in table["total"].items()) + "."),
        _figure(_reasons_chart(reasons), "Most common reasons for the risk, with how many customers carry each: "
                + ("; ".join(f"{reason}: {count:,}" for reason, count in reasons.items()) or "none") + "."),
    ]
    if reference is not None:
        figure, then, now = distribution_figure(scored["churn_probability"].to_numpy(), reference)
        figures.append(_figure(data_uri(figure), _distribution_words(then, now, reference["edges"])))
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in manifest.get("warnings", [])) or "<li>none</li>"
    models = html.escape(", ".join(f"{k} v{v['version']}" for k, v in manifest["models"].items()))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>At-risk customers {as_of}</title>
<style>body{{font-family:sans-serif;max-width:820px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}}
th:first-child{{text-align:left}}img{{max-width:100%}}figure{{margin:1.5em 0}}
figcaption{{font-size:90%;color:#555}}</style></head><body>
<h1>At-risk customers as of {as_of}</h1>
<p><b>{manifest['customers_scored']:,}</b> active customers scored: {_tier_counts(tiers)}.
Value at risk (churn probability x predicted CLV, summed):
<b>{money(manifest['total_value_at_risk'], currency)}</b>.</p>
<h2>Value at risk by segment and tier ({currency})</h2>
<table><tr><th>segment</th>{''.join(f'<th>{t}</th>' for t in [*TIERS, 'total'])}</tr>{rows}</table>
{''.join(figures)}
<h2>Warnings</h2><ul>{warnings}</ul>
<p>Models: {models}. The list itself sits beside this page: at_risk.xlsx opens in Excel or LibreOffice,
at_risk.csv and at_risk.parquet are for imports (manifest.json names the files written tonight).</p></body></html>"""
