"""The fields a CRM import writes onto a contact, one list for HubSpot, Salesforce and Zoho:
each field's list column, internal name, label (also the import file's header), kind and
one-line description; the values a picklist allows; and how numbers and dates are written.

A kind says how a CRM stores the field (each CRM module maps kinds to its own types):
probability (a number 0 to 1 with 4 decimals, not a percentage), money (2 decimals, in the
list's currency), tier and segment (picklists), text, long text, and date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.at_risk.actions import UNSEGMENTED
from pipeline.at_risk.crm.splitting import FileLimits
from pipeline.at_risk.listing import MONEY_DECIMALS, PROBABILITY_DECIMALS, spreadsheet_safe
from pipeline.at_risk.tiers import TIERS
from pipeline.config import CrmConfig, ScoringConfig

# Characters of a text field: one line (the actions the config names are short phrases), and
# long (the reasons: at most 5 of about 100 characters each, joined with '; ').
TEXT_LENGTHS = {"text": 255, "long_text": 2000}
NUMBER_DECIMALS = {"probability": PROBABILITY_DECIMALS, "money": MONEY_DECIMALS}
# Digits of a number field, the decimals included: a probability is at most 1 (1 + 4); money
# is bounded by the contract's +-1e11 on amounts (12 + 2).
NUMBER_DIGITS = {"probability": 1 + PROBABILITY_DECIMALS, "money": 12 + MONEY_DECIMALS}
# The contact columns of an import file, (header, contact field): HubSpot, Salesforce and Zoho
# all label their standard contact fields so.
EMAIL_AND_NAMES = (("Email", "email"), ("First Name", "first_name"), ("Last Name", "last_name"))


@dataclass(frozen=True)
class CrmField:
    column: str  # the at-risk list's column
    name: str  # internal name: HubSpot's property name; Salesforce and Zoho use `api_name`
    label: str  # what the CRM shows, and the column header of the import file
    kind: str  # probability, money, tier, segment, text, long_text or date
    description: str  # may name {currency}

    @property
    def api_name(self) -> str:
        """The name as Salesforce and Zoho spell field API names: Churn_Probability."""
        return "_".join(part.capitalize() for part in self.name.split("_"))


CRM_FIELDS = (
    CrmField("churn_probability", "churn_probability", "Churn probability", "probability",
             "Calibrated probability (0 to 1) that the customer churns within the churn horizon."),
    CrmField("risk_tier", "churn_risk_tier", "Churn risk tier", "tier",
             "Risk tier of the churn probability, by the thresholds of the churn pipeline."),
    CrmField("predicted_clv", "predicted_clv", "Predicted CLV", "money",
             "Predicted net revenue of the customer over the CLV horizon, in {currency}."),
    CrmField("value_at_risk", "value_at_risk", "Value at risk", "money",
             "Churn probability x predicted CLV: the revenue at risk if the customer leaves, in {currency}."),
    CrmField("top_reasons", "churn_top_reasons", "Churn top reasons", "long_text",
             "The strongest drivers of the customer's churn risk, in plain words, separated by '; '."),
    CrmField("segment", "rfm_segment", "RFM segment", "segment",
             "RFM segment of the customer (recency and frequency of purchases)."),
    CrmField("recommended_action", "retention_action", "Retention action", "text",
             "The retention action recommended for the customer's main churn reason."),
    CrmField("as_of_date", "churn_scored_on", "Churn scored on", "date",
             "The date the churn fields above were scored as of (the at-risk list's as-of date)."),
)


@dataclass(frozen=True)
class CrmFormat:
    """How one CRM's import tool wants its files. `identity(crm)` lists the contact columns
    first, as (header, contact field) pairs; the first pair is what the CRM matches a row on."""

    name: str
    limits: FileLimits  # records and bytes per file, as the CRM documents them
    identity: Callable[[CrmConfig], list[tuple[str, str]]]
    date_pattern: Callable[[ScoringConfig], str]  # strftime pattern of a date value
    definitions_file: str
    definitions: Callable[[ScoringConfig], dict]  # the custom fields an admin creates once
    clean_text: Callable[[pd.Series], pd.Series] | None = None  # a CRM's own rule for text cells

    @property
    def file_stem(self) -> str:
        return f"{self.name}_contacts"


def matched_on_email(crm: CrmConfig) -> list[tuple[str, str]]:
    return list(EMAIL_AND_NAMES)


def describe(field: CrmField, cfg: ScoringConfig) -> str:
    return field.description.format(currency=cfg.currency)


def allowed_values(field: CrmField, cfg: ScoringConfig) -> list[str] | None:
    """The values a picklist field allows: the tiers of the registry, or the configured
    segments and the segment of customers no rule matches; None for other kinds."""
    if field.kind == "tier":
        return list(TIERS)
    if field.kind == "segment":
        return list(dict.fromkeys([rule.name for rule in cfg.segments] + [UNSEGMENTED]))
    return None


def per_distinct(values: pd.Series, rewrite: Callable[[np.ndarray], list]) -> pd.Series:
    """`rewrite` (distinct values -> their rewritten text, in order) applied once per distinct
    value, '' for a missing one: a list repeats its tiers, segments, actions and date on every
    row, and a million rows are rewritten in the time of their few distinct values."""
    codes, distinct = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
    rewritten = np.array([*rewrite(distinct), ""], dtype=object)  # code -1 (missing) takes the last
    return pd.Series(rewritten[codes], index=values.index, dtype=object)


def one_line(values: pd.Series | None, index: pd.Index) -> pd.Series:
    """Text cells on one line (runs of spaces, tabs and line breaks become one space), trimmed;
    '' for a missing value or column. Zoho reads one record per line of the file."""
    if values is None:
        return pd.Series("", index=index, dtype=object)
    if pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
        values = values.astype("Int64")  # a numeric id column with gaps: 42, not 42.0
    text = per_distinct(values.astype(object), lambda distinct: [" ".join(str(v).split()) for v in distinct])
    return text.set_axis(index)


def formula_safe(text: pd.Series) -> pd.Series:
    """Text cells as the list's CSV writes them (`listing.spreadsheet_safe`): a formula-like
    cell gets the single quote that makes a spreadsheet show it as text."""
    return per_distinct(text, lambda distinct: list(spreadsheet_safe(pd.DataFrame({"text": distinct}))["text"]))


def plain_numbers(values: pd.Series, decimals: int) -> pd.Series:
    """Numbers as every import tool here reads them: digits, an optional leading minus and a
    '.' before exactly `decimals` decimals; no thousands separator, currency or exponent; an
    empty cell for a missing value."""
    rounded = np.round(values.to_numpy(dtype=float), decimals) + 0.0  # + 0.0: no "-0.00"
    return pd.Series([f"{v:.{decimals}f}" if v == v else "" for v in rounded.tolist()], index=values.index,
                     dtype=object)


def dates_as(values: pd.Series, pattern: str) -> pd.Series:
    """ISO dates of the list (as_of_date) written with a strftime `pattern`."""
    return per_distinct(values, lambda distinct: [dt.date.fromisoformat(str(v)).strftime(pattern) for v in distinct])
