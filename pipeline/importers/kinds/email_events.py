"""Email events exported by marketing automation (HubSpot's email events API JSON; a Marketo
activity export with an edited mapping). -> interactions on the `email` channel.

Only the customer's own engagement counts: `values.event_type` maps each event type the tool
writes to the contract's event type (OPEN -> open, CLICK -> click); a type mapped to null or
not listed under a `"*": null` entry (sent, delivered, bounced: things done *to* the
customer) is skipped with its type as the reason. Opens and clicks that the tool flags as
made by a machine (`filtered`: HubSpot's filteredEvent, a mail scanner following every link
or a privacy proxy fetching every image) are skipped too: counting them would make a silent
customer look engaged."""

from __future__ import annotations

import pandas as pd

from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.linking import Customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems, mapped_values

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("occurred_at", "event_type")


def convert(records: pd.DataFrame, mapping: SourceMapping, customers: Customers, problems: Problems) -> Converted:
    ledger = Ledger(records=len(records))
    event_type = mapped_values(records, "event_type", mapping, problems)
    problems.raise_if_any(mapping)
    records = records.assign(contract_event_type=event_type)
    if "event_id" in records:  # overlapping pulls give an event twice: it happened once
        records = ledger.skip(records, records["event_id"].notna() & records["event_id"].duplicated(),
                              "the same event again (its id seen before)")
    if "filtered" in records:
        records = ledger.skip(records, records["filtered"].fillna(False).astype(bool),
                              "made by a machine (filtered by the tool)")
    records = ledger.skip(records, records["contract_event_type"].isna(),
                          "not the customer's engagement: event type " + records["event_type"].astype(str))
    records = ledger.skip(records, records["occurred_at"].isna(), "no event time")
    records = ledger.link(records, mapping, customers)
    events = pd.DataFrame({
        "customer_id": records["customer_id"],
        "occurred_at": records["occurred_at"],
        "channel": mapping.options.get("channel", "email"),
        "event_type": records["contract_event_type"],
    })
    events = events.sort_values(["customer_id", "occurred_at", "event_type"], kind="stable").reset_index(drop=True)
    return ledger.done({"interactions": events}, matched=len(events))
