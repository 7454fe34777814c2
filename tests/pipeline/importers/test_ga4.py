"""GA4's BigQuery export as NDJSON -> web and app interactions: signed-in events linked by
user_id, anonymous ones stitched only through a sign-in on the same device by the end of
their UTC day, shared devices linking no one, purchases kept as web events; and the email
and web sources sharing one interactions table. The expected figures are worked out by hand
from samples/ga4/ and samples/hubspot-email-events/."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import DataError
from pipeline.importers.kinds.web_events import NEVER_SIGNED_IN, SHARED_DEVICE
from tests.pipeline.importers.crm_samples import (
    EMAIL_PAGES,
    GA4_EVENTS,
    import_hubspot_contacts,
    import_source,
    read_table,
    set_aside,
)


@pytest.fixture
def imported(tmp_path):
    """The contacts, then the GA4 events, imported into one data folder; the GA4 report."""
    import_hubspot_contacts(tmp_path)
    return import_source("ga4", [GA4_EVENTS], tmp_path)


def test_signed_in_and_stitched_events_become_web_and_app_interactions(tmp_path, imported):
    interactions = read_table(tmp_path / "interactions.csv")
    assert interactions.values.tolist() == [
        # anonymous until the purchase at 14:09 the same day: the visit before it is Anna's
        ["51234567801", "2024-03-10 14:05:12", "web", "page_view"],  # 1710079512345678 us
        ["51234567801", "2024-03-10 14:05:12", "web", "session_start"],
        ["51234567801", "2024-03-10 14:06:41", "web", "add_to_cart"],
        ["51234567801", "2024-03-10 14:09:15", "web", "purchase"],
        ["51234567801", "2024-03-11 09:00:00", "web", "page_view"],  # anonymous, the device known since the 10th
        ["51234567802", "2024-03-12 00:00:00", "web", "page_view"],  # anonymous; signed in at 23:59:59 that day
        ["51234567802", "2024-03-12 23:59:59", "web", "login"],
        ["51234567803", "2024-03-14 07:30:00", "app", "screen_view"],  # ANDROID
        ["51234567805", "2024-03-13 10:00:00", "app", "login"],  # IOS
        ["51234567806", "2024-03-13 18:00:00", "app", "login"],
    ]
    assert imported["rows_read"] == 16 and imported["records"] == 16
    assert imported["matched"] == 10 and imported["written"] == {"interactions": 10}
    assert imported["skipped_by_reason"] == {"event not counted: user_engagement": 1}
    assert imported["unmatched"] == 5 and imported["unmatched_by_reason"] == {
        NEVER_SIGNED_IN: 3, SHARED_DEVICE: 1, "user_id not in customers": 1}


def test_identity_learned_on_a_later_utc_day_is_not_used(tmp_path, imported):
    aside = set_aside(tmp_path, "ga4").set_index("source_row")
    # 2024-03-11 23:59:59.999999 UTC: the device signs in 24 hours later, on the 12th
    assert aside.loc["7", ["occurred_at", "pseudo_id", "user_id", "reason"]].tolist() == [
        "2024-03-11 23:59:59", "2039481111.1710100000", "", NEVER_SIGNED_IN]
    # one microsecond later, 2024-03-12 00:00:00, the same device's page view is the customer's
    written = read_table(tmp_path / "interactions.csv")
    assert written[written["customer_id"] == "51234567802"]["occurred_at"].tolist() == [
        "2024-03-12 00:00:00", "2024-03-12 23:59:59"]


def test_an_anonymous_event_on_a_device_two_customers_signed_in_on_links_no_one(tmp_path, imported):
    aside = set_aside(tmp_path, "ga4").set_index("source_row")
    assert aside.loc["11", ["occurred_at", "platform", "reason"]].tolist() == [
        "2024-03-13 12:00:00", "IOS", SHARED_DEVICE]
    written = read_table(tmp_path / "interactions.csv")
    assert "2024-03-13 12:00:00" not in written["occurred_at"].tolist()
    never = aside[aside["reason"] == NEVER_SIGNED_IN]
    assert never.index.tolist() == ["7", "13", "14"]  # 13 and 14: a visitor who never signed in


def test_purchase_events_stay_web_interactions_and_never_become_transactions(tmp_path, imported):
    assert not (tmp_path / "transactions.csv").exists()
    assert not (tmp_path / "imports" / "ga4" / "transactions.csv").exists()
    written = read_table(tmp_path / "interactions.csv")
    assert written[written["event_type"] == "purchase"].values.tolist() == [
        ["51234567801", "2024-03-10 14:09:15", "web", "purchase"]]


def test_email_and_web_events_share_the_interactions_table_and_a_reimport_replaces_only_its_part(tmp_path):
    import_hubspot_contacts(tmp_path)
    import_source("hubspot-email-events", EMAIL_PAGES, tmp_path)
    import_source("ga4", [GA4_EVENTS], tmp_path)

    both = read_table(tmp_path / "interactions.csv")
    assert len(both) == 6 + 10
    assert both["channel"].value_counts().to_dict() == {"web": 7, "email": 6, "app": 3}

    report = import_source("hubspot-email-events", EMAIL_PAGES[1:], tmp_path)  # page 2 only, this time

    assert report["written"] == {"interactions": 3}  # Anna's click and open, Thi's open
    again = read_table(tmp_path / "interactions.csv")
    assert len(again) == 3 + 10
    assert again["channel"].value_counts().to_dict() == {"web": 7, "app": 3, "email": 3}
    assert len(read_table(tmp_path / "imports" / "ga4" / "interactions.csv")) == 10
    assert len(read_table(tmp_path / "imports" / "hubspot-email-events" / "interactions.csv")) == 3


def test_an_extract_without_the_device_id_stops_the_import_naming_the_missing_field(tmp_path):
    import_hubspot_contacts(tmp_path)
    extract = tmp_path / "events_20240310-selected-columns.json"
    # a query that selected the event's time, name, user and platform, but not user_pseudo_id
    extract.write_text("".join(json.dumps(line) + "\n" for line in [
        {"event_timestamp": "1710079512345678", "event_name": "page_view", "platform": "WEB"},
        {"event_timestamp": "1710079755918244", "event_name": "purchase", "user_id": "51234567801", "platform": "WEB"},
    ]), encoding="utf-8")

    with pytest.raises(DataError) as raised:
        import_source("ga4", [extract], tmp_path)

    message = str(raised.value)
    assert "[missing column]" in message and "pseudo_id (looked for 'user_pseudo_id')" in message
    assert extract.name in message
    assert not (tmp_path / "interactions.csv").exists()
