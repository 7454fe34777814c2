"""The definition written under each chart of the KPI report, in the words of the
computation in pipeline.reporting.kpis."""

from __future__ import annotations

import datetime as dt

from models.practice_formula import DAYS_PER_YEAR
from pipeline.config import ChurnConfig


def kpi_definitions(churn: ChurnConfig, data_end: dt.date) -> dict[str, str]:
    """Chart key -> the text shown under that chart (or card) of the report."""
    horizon, lookback = churn.horizon_days, churn.active_lookback_days
    if churn.definition == "inactivity":
        active = f"at least one purchase in the {lookback} days before that moment"
        churned = f"no purchase in the {horizon} days from the period start"
        joined = "whose first purchase falls in the period"
    else:
        active = "a subscription running at that moment"
        churned = (f"every subscription running at the period start ends within {horizon} days and no new one "
                   f"starts within {churn.subscription_grace_days} days of the last end")
        joined = "whose first subscription starts in the period"
    return {
        "customers": f"Customers at start / at end: active customers at the first moment of the period / of the "
                     f"next period (active: {active}). New customers: customers {joined}.",
        "customer_retention_rate": "(customers at end − new customers) ÷ customers at start. As in the standard "
                                   "formula, customers who come back after lapsing count as retained.",
        "churn_rate": f"Share of the customers active at the period start who churned by the configured definition "
                      f"'{churn.definition}' with its {horizon}-day horizon: {churned} (the window may run past the "
                      f"period end). Empty where that {horizon}-day window is not over by the end of the data "
                      f"({data_end}).",
        "repeat_purchase_rate": "Among customers with at least one purchase up to the period end, the share with "
                                "two or more purchases up to the period end (their whole history, not only the "
                                "period). A purchase is a transaction with a positive amount.",
        "purchase_frequency": "Purchases in the period ÷ customers with a purchase in the period. Refunds are "
                              "not purchases.",
        "revenue": "Net amount of all transactions in the period: purchases minus refunds.",
        "revenue_per_purchasing_customer": "Revenue ÷ customers with a purchase in the period.",
        "average_order_value": "Average order value (AOV): revenue, net of refunds, ÷ purchases in the period.",
        "cohort_retention": "Customers grouped by the calendar month of their first purchase (the cohort). Cell "
                            "(cohort, month N): share of the cohort with a purchase in the Nth month after the "
                            "cohort month; month 0 is the cohort month itself (100% by construction, so the colour "
                            "scale is set by months 1 and later). Only whole months observed before the data ends "
                            "are shown.",
        "cohort_revenue": "Historical CLV per cohort: cumulative net revenue of the cohort from its first month to "
                          "month N, divided by the cohort's size.",
        "practice_clv": "CLV ≈ AOV × purchases per customer per year × average lifespan in years, over the report "
                        "window, for a whole lifetime (no horizon cap). AOV: net revenue ÷ purchases. Purchases per "
                        f"customer per year: purchases ÷ purchasing customers, scaled from the window's length to a "
                        f"{DAYS_PER_YEAR}-day year. Churn rate: pooled over the periods that have one (churned ÷ "
                        f"customers at start, a rate per {horizon} days). Average lifespan: 1 ÷ that rate horizons of "
                        f"{horizon} days, in years (the mean of a geometric lifetime).",
        "nps": "Net Promoter Score: (promoters, scores 9–10, − detractors, scores 0–6) ÷ answers × 100, over the "
               "survey answers given in the period (answer counts in the table). Empty when nobody answered.",
        "nps_distribution": "Number of answers per score over the report window: detractors (0–6) in red, "
                            "passives (7–8) in grey, promoters (9–10) in green.",
        "csat_average": "Customer satisfaction (CSAT): average satisfaction score (1–5, higher is better) of the "
                        "support tickets resolved in the period that carry one.",
        "ces_average": "Customer effort score (CES): average effort score (1–7, lower is easier) of the support "
                       "tickets resolved in the period that carry one.",
        "open_complaint_share": "Share of the customers active at the period end who have a ticket of category "
                                "'complaint' opened before the period end and not resolved by then.",
        "mrr": "Monthly recurring revenue (MRR) at a moment: sum of the monthly fees of the subscriptions running "
               "at it (started before it, not ended before it). MRR at a period end is the next period's MRR at "
               "start.",
        "mrr_movements": "MRR movements between the period start and end, per customer: new (no subscription "
                         "running at the start), expansion (subscribed at both, higher MRR at the end), downgrade "
                         "(subscribed at both, lower MRR at the end: the decrease), churned (subscribed at the start, "
                         "none running at the end: all of their start MRR). End = start + new + expansion − "
                         "downgrade − churned. A subscription that restarts after a gap spanning a period boundary "
                         "counts as churned, then as new.",
        "retention_of_mrr": "Net dollar retention (NDR): MRR at the period end from customers subscribed at the "
                            "period start ÷ MRR at the start. Gross revenue retention (GRR): the same with each "
                            "customer's end MRR capped at their start MRR, so expansion does not count and GRR never "
                            "exceeds 100%.",
    }
