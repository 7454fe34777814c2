"""The feature catalogue: every feature's name, stage, kind and one-line description.

Stages declare their features next to their SQL; reports, `churn features --catalog` and
the per-customer reasons on the at-risk list reuse the descriptions from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from pipeline.tables import Tables

KEYS = ["customer_id", "cutoff_date"]


@dataclass(frozen=True)
class Feature:
    name: str
    stage: str
    description: str
    kind: Literal["numeric", "categorical"] = "numeric"


def run_stage_query(
    tables: Tables,
    spine: pd.DataFrame,
    sql: str,
    params: dict,
    features: list[Feature],
    zero_when_no_events: list[str],
) -> pd.DataFrame:
    """Run a stage's SQL with `spine` (customer_id, cutoff_date) visible as a table.

    The SQL returns rows only for customers with events; here every spine row gets one
    row, in key order. Counts are 0 for customers without events (zero in the window),
    while recencies and averages stay missing (it never happened)."""
    found = tables.query_with("spine", spine[KEYS], sql, params)
    frame = spine[KEYS].merge(found, how="left", on=KEYS, validate="one_to_one")
    frame[zero_when_no_events] = frame[zero_when_no_events].fillna(0)
    frame = frame.sort_values(KEYS, kind="stable").reset_index(drop=True)
    return frame[KEYS + [f.name for f in features]]
