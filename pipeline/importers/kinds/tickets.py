"""Support tickets exported by a help desk (Zendesk's CSV or incremental API JSON, ServiceNow's
incident CSV). -> support_tickets.

- `values.status` maps each status to `open`, `resolved` or `skip` (a deleted ticket, a
  spam one). An open ticket has no resolution time, even when a reopened one kept its old
  one; a resolved ticket's time is `resolved_at`, else `closed_at`, else `updated_at`.
- `values.satisfaction` is the CSAT rule: each rating the tool gives (Zendesk: good, bad,
  offered, unoffered) -> a score on the contract's 1-5 scale, or null for no answer.
- `values.priority` and `values.category` rename values (a category of `complaint` feeds the
  complaint features); a value they do not list is kept as written, lower-cased.
- An incremental export re-emits a ticket on every page (and run) where it changed: each
  ticket is written once, its latest version (the greatest `updated_at`; on a tie, or
  without one, the one read last), and the earlier ones are skipped.
- The customer is found by the mapping's link rules (an external id, then an email).
"""

from __future__ import annotations

import pandas as pd

from pipeline.errors import ConfigError
from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.linking import Customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems, first_present, mapped_values, recoded_values

STATUSES = ("open", "resolved", "skip")
CSAT_SCALE = (1, 5)
EARLIER_VERSION = "an earlier version of the same ticket"

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("ticket_id", "opened_at")


def convert(records: pd.DataFrame, mapping: SourceMapping, customers: Customers, problems: Problems) -> Converted:
    ledger = Ledger(records=len(records))
    status = ticket_status(records, mapping, problems)
    csat = csat_scores(records, mapping, problems)
    problems.raise_if_any(mapping)
    bad_status = status.notna() & ~status.isin(STATUSES)
    if bad_status.any():
        raise ConfigError(f"values.status in {mapping.path} maps to {sorted(set(status[bad_status]))}; "
                          f"each status must map to one of {STATUSES}.")
    records = records.assign(status_meaning=status, csat=csat)
    records = ledger.skip(records, records["ticket_id"].isna(), "no ticket id")
    records = ledger.skip(records, earlier_versions(records), EARLIER_VERSION)
    records = ledger.skip(records, records["status_meaning"].eq("skip"),
                          "status " + records.get("status", pd.Series("", index=records.index)).astype(str).str.lower())
    records = ledger.link(records, mapping, customers)
    resolved = records["status_meaning"].eq("resolved")
    resolved_at = first_present(records, "resolved_at", "closed_at", "updated_at").where(resolved)
    tickets = pd.DataFrame({
        "ticket_id": records["ticket_id"],
        "customer_id": records["customer_id"],
        "opened_at": records["opened_at"],
        "resolved_at": resolved_at,
        "category": _lowered(recoded_values(records, "category", mapping)) if "category" in records else None,
        "priority": _lowered(recoded_values(records, "priority", mapping)) if "priority" in records else None,
        "satisfaction": records["csat"],
        "effort_score": records.get("effort"),
    })
    tickets = tickets.sort_values(["opened_at", "ticket_id"], kind="stable").reset_index(drop=True)
    return ledger.done({"support_tickets": tickets}, matched=len(tickets))


def earlier_versions(records: pd.DataFrame) -> pd.Series:
    """True for each record that a later version of the same ticket replaces. Records are in
    the order they were read, so a stable sort keeps the last one read among equal times."""
    by_time = records
    if "updated_at" in records:
        by_time = records.sort_values("updated_at", kind="stable", na_position="first")
    latest = by_time.drop_duplicates("ticket_id", keep="last").index
    return pd.Series(~records.index.isin(latest), index=records.index)


def ticket_status(records: pd.DataFrame, mapping: SourceMapping, problems: Problems) -> pd.Series:
    """open / resolved / skip for each ticket: by `values.status`, or, for an export without
    statuses, resolved exactly when it has a resolution time."""
    if "status" in records and mapping.values.get("status"):
        return mapped_values(records, "status", mapping, problems)
    resolved = records["resolved_at"].notna() if "resolved_at" in records else pd.Series(False, index=records.index)
    return resolved.map({True: "resolved", False: "open"})


def csat_scores(records: pd.DataFrame, mapping: SourceMapping, problems: Problems) -> pd.Series:
    """Each ticket's satisfaction on the 1-5 scale by the mapping's CSAT rule; missing where
    the customer gave none."""
    if "satisfaction" not in records:
        return pd.Series(pd.NA, index=records.index, dtype="Int64")
    scores = pd.to_numeric(mapped_values(records, "satisfaction", mapping, problems), errors="coerce")
    off_scale = scores.notna() & ~scores.between(*CSAT_SCALE)
    if off_scale.any():
        raise ConfigError(f"values.satisfaction in {mapping.path} maps a rating to {sorted(set(scores[off_scale]))}, "
                          f"outside the contract's CSAT scale {CSAT_SCALE}.")
    return scores.round().astype("Int64")


def _lowered(values: pd.Series) -> pd.Series:
    return values.astype("string").str.strip().str.lower().astype(object).where(values.notna(), None)
