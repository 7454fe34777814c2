"""The report's sections: which cards each section of the page shows, from the KPIs, the
cohorts, the practice CLV and the model backtest, with the names of the KPIs."""

from __future__ import annotations

import pandas as pd

from pipeline.config import ChurnConfig
from pipeline.reporting.backtest import Backtest
from pipeline.reporting.cards import (
    MRR_MOVEMENT_COLOURS,
    Card,
    Unit,
    cohort_heatmap,
    cohort_revenue_chart,
    format_value,
    html_table,
    line_chart,
    nps_distribution_chart,
)
from pipeline.reporting.definitions import kpi_definitions
from pipeline.reporting.kpis import KpiResults

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


def _line_card(results: KpiResults, labels: list[str], title: str, columns: list[str], definition: str,
               unit: Unit, colours: list[str] | None = None) -> Card:
    """A line chart of KPI columns over the periods, or a note when they have no value."""
    series = {NAMES[c]: results.kpis[c] for c in columns}
    if all(pd.Series(values).isna().all() for values in series.values()):
        return Card(title, definition, note="No value in this report window (see the definition).")
    return Card(title, definition, image=line_chart(labels, series, unit, colours))


def build_sections(results: KpiResults, churn: ChurnConfig) -> list[tuple[str, list[Card]]]:
    """(section title, its cards) in page order; a section whose table is absent is left out."""
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
    """Predicted against realised churn rate and revenue at the backtested cutoffs."""
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
                  "on. † marks cutoffs the champions learned from (a model looks better on rows it has seen: "
                  "the walk-forward backtest below says what to expect); the others they never saw. " + lead)
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
                        table=html_table(["Cutoff", "Role", "Customers", "Predicted churn", "Realised churn",
                                          "Predicted revenue", "Realised revenue"], rows))
    cards = [churn_card, revenue_card]
    if backtest.forward is not None:
        cards.append(forward_card(backtest.forward))
    return cards


def forward_card(forward) -> Card:
    """The training run's walk-forward backtest: at each origin, a model trained only on labels
    that ended by it, against what customers then did."""
    churn, clv = forward[forward["model"] == "churn"], forward[forward["model"] == "clv"]
    rows = [[r.origin, "churn", format_value(r.customers, "count"), f"ROC AUC {r.roc_auc:.3f}, ECE {r.ece:.3f}",
             format_value(r.predicted_churn_rate, "percent"), format_value(r.churn_rate, "percent")]
            for r in churn.itertuples()]
    rows += [[r.origin, "CLV", format_value(r.customers, "count"),
              f"Spearman {r.spearman:.3f}, aggregate error {r.aggregate_error_pct:+.1f}%",
              format_value(r.predicted_revenue, "money"), format_value(r.realised_revenue, "money")]
             for r in clv.itertuples()]
    definition = ("What to expect from tonight's list. At each backtest origin of the champions' training run, "
                  "models learned only from labels that had ended by that date, scored the customers active "
                  "on it, and were compared with what they did next; calibration came from the other origins. "
                  f"Churn: mean ROC AUC {churn['roc_auc'].mean():.3f}, ECE {churn['ece'].mean():.3f}; CLV: mean "
                  f"Spearman {clv['spearman'].mean():.3f}." if len(churn) and len(clv) else "")
    return Card("Walk-forward backtest (forward figures)", definition, table=html_table(
        ["Origin", "Model", "Customers", "Forward figures", "Predicted", "Realised"], rows))


def _practice_clv_table(results: KpiResults) -> str:
    """The practice formula's inputs and result, and the CLV model's view when it exists."""
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
    return html_table(["Figure", "Value"], rows)


def _cohort_revenue_table(results: KpiResults) -> str:
    """Cumulative revenue per customer after 1, 3, 6 and 12 months, where observed."""
    frame = results.cohort_revenue
    marks = [n for n in (1, 3, 6, 12) if f"month_{n - 1}" in frame]
    rows = [[row["cohort"], format_value(row["customers"], "count")]
            + [format_value(row[f"month_{n - 1}"], "money") for n in marks] for _, row in frame.iterrows()]
    return html_table(["Cohort", "Customers"] + [f"After {n} month{'s' if n > 1 else ''}" for n in marks], rows)
