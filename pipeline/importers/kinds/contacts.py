"""Contacts exported by a CRM (HubSpot's contacts CSV). -> customers.

The CRM's record id is the customer id (so the list goes back to the same record); the
create date is the signup moment; the original source is the acquisition channel (renamed
by `values.acquisition_channel`, kept as written otherwise); the email, first and last name
and lifecycle stage (renamed by `values.lifecycle_stage`, so that a label and an internal
value read the same) are kept beside the contract's columns for the list and the CRM export.
A record without an id is skipped; two records with one id stop the import (the CRM would
not export that, so the file is not what it seems)."""

from __future__ import annotations

import pandas as pd

from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems, recoded_values

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("record_id",)


def convert(records: pd.DataFrame, mapping: SourceMapping, customers, problems: Problems) -> Converted:
    ledger = Ledger(records=len(records))
    records = ledger.skip(records, records["record_id"].isna(), "no record id")
    problems.add(records, records["record_id"].duplicated(keep=False),
                 f"{mapping.fields['record_id'].column[0]!r} (field record_id)", "the same record id twice",
                 records["record_id"])
    problems.raise_if_any(mapping)
    frame = pd.DataFrame({
        "customer_id": records["record_id"],
        "signup_at": records.get("created_at"),
        "country": records.get("country"),
        "acquisition_channel": _recoded(records, "acquisition_channel", mapping),
        "is_loyalty_member": records.get("is_loyalty_member"),
        "email": records.get("email"),
        "first_name": records.get("first_name"),
        "last_name": records.get("last_name"),
        "name": full_names(records),
        "lifecycle_stage": _recoded(records, "lifecycle_stage", mapping),
    }, index=records.index)
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return ledger.done({"customers": frame}, matched=len(frame))


def full_names(records: pd.DataFrame) -> pd.Series | None:
    """First and last name joined (the list and the CRM export show one name); None where
    the contact has neither."""
    names = [records[c] for c in ("first_name", "last_name") if c in records]
    if not names:
        return None
    return pd.concat(names, axis=1).apply(lambda row: " ".join(v for v in row if isinstance(v, str)) or None, axis=1)


def _recoded(records: pd.DataFrame, field: str, mapping: SourceMapping) -> pd.Series | None:
    return recoded_values(records, field, mapping) if field in records else None
