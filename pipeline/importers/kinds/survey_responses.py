"""Survey answers exported by an NPS tool (Delighted's responses CSV, or any tool's export of
email, 0-10 score and answer time). -> surveys.

The score must be a whole number from 0 to 10: a score off that scale stops the import, which
never rescales another survey's answers into NPS. (A 1-5 CSAT survey's scores fit inside
0-10 and cannot be told apart: export the NPS survey's responses only.) The customer is
found by the mapping's link rules."""

from __future__ import annotations

import pandas as pd

from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.linking import Customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems

NPS_SCALE = (0, 10)

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("responded_at", "score")


def convert(records: pd.DataFrame, mapping: SourceMapping, customers: Customers, problems: Problems) -> Converted:
    ledger = Ledger(records=len(records))
    score = records["score"]
    # shown as the export writes it, like every other value a message quotes
    problems.add(records, score.notna() & ~score.between(*NPS_SCALE).fillna(False).astype(bool),
                 f"{mapping.fields['score'].column[0]!r} (field score)", "an NPS score must be 0-10",
                 score.astype("string"))
    problems.raise_if_any(mapping)
    records = ledger.skip(records, score.isna(), "no score (the survey was not answered)")
    records = ledger.skip(records, records["responded_at"].isna(), "no answer time")
    records = ledger.link(records, mapping, customers)
    surveys = pd.DataFrame({
        "customer_id": records["customer_id"],
        "responded_at": records["responded_at"],
        "nps_score": records["score"],
    }).sort_values(["customer_id", "responded_at"], kind="stable").reset_index(drop=True)
    return ledger.done({"surveys": surveys}, matched=len(surveys))
