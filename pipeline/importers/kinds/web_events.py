"""Web and app analytics events (Google Analytics 4's BigQuery export as newline-delimited
JSON). -> interactions on the `web` or `app` channel (by `values.platform`).

A signed-in event carries the site's customer id (`user_id`); an anonymous one only the
device's `user_pseudo_id`. An anonymous event is stitched to a customer only through a
`user_id` seen on the same device by the end of that event's day (UTC), and only when
exactly one was: a shared device links no one. Identity learned later is not used, so a
feature at a cutoff never counts visits it could not have attributed then. Events the
value map sends to null are skipped; `purchase` events stay web interactions and never
become transactions (the shop is the source of purchases)."""

from __future__ import annotations

import pandas as pd

from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.linking import Customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems, recoded_values

SHARED_DEVICE = "anonymous, on a device several customers signed in on by that day"
NEVER_SIGNED_IN = "anonymous, and no one had signed in on the device by the end of that day"

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("occurred_at", "event_name", "user_id", "pseudo_id")


def convert(records: pd.DataFrame, mapping: SourceMapping, customers: Customers, problems: Problems) -> Converted:
    ledger = Ledger(records=len(records))
    event_type = recoded_values(records, "event_name", mapping)
    records = records.assign(contract_event_type=event_type)
    records = ledger.skip(records, records["event_name"].notna() & event_type.isna(),
                          "event not counted: " + records["event_name"].astype(str))
    records = ledger.skip(records, records["occurred_at"].isna(), "no event time")
    user_id, why_not = stitched_user_ids(records)
    records = ledger.set_unmatched(records.assign(user_id=user_id), user_id.isna(), why_not)
    records = ledger.link(records, mapping, customers)
    channel = (recoded_values(records, "platform", mapping) if "platform" in records
               else pd.Series(None, index=records.index, dtype=object))
    events = pd.DataFrame({
        "customer_id": records["customer_id"],
        "occurred_at": records["occurred_at"],
        "channel": channel.fillna(mapping.options.get("default_channel", "web")).astype(str).str.lower(),
        "event_type": records["contract_event_type"],
    })
    events = events.sort_values(["customer_id", "occurred_at", "event_type"], kind="stable").reset_index(drop=True)
    return ledger.done({"interactions": events}, matched=len(events))


def stitched_user_ids(events: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(user_id, reason): each event's own user_id, or for an anonymous event the one user_id
    its device had signed in with by the end of the event's day; else None and why."""
    user_id = events["user_id"].copy()
    reason = pd.Series(None, index=events.index, dtype=object)
    anonymous = user_id.isna()
    if not anonymous.any():
        return user_id, reason
    signed = events[~anonymous & events["pseudo_id"].notna()]
    first_seen = (signed.groupby(["pseudo_id", "user_id"], sort=False)["occurred_at"].min()
                  .rename("signed_in_at").reset_index())
    anon = events.loc[anonymous, ["pseudo_id", "occurred_at"]]
    candidates = anon.assign(event=anon.index, day_end=anon["occurred_at"].dt.floor("D") + pd.Timedelta(days=1))
    candidates = candidates.merge(first_seen, on="pseudo_id", how="inner")
    candidates = candidates[candidates["signed_in_at"] < candidates["day_end"]]
    owners = candidates.groupby("event")["user_id"].nunique()
    one = candidates[candidates["event"].isin(owners.index[owners == 1])].drop_duplicates("event")
    user_id.loc[one["event"].to_numpy()] = one["user_id"].to_numpy()
    reason[anonymous] = NEVER_SIGNED_IN
    reason.loc[owners.index[owners > 1]] = SHARED_DEVICE
    return user_id, reason.where(user_id.isna(), None)
