"""HubSpot: the contacts export -> customers (labels or internal names as headers, create dates
in the account's zone, ids never merged by name), and the email events API's pages ->
email interactions (only the customer's own opens and clicks, machine ones left out). The
expected figures are worked out by hand from samples/hubspot-contacts/ and
samples/hubspot-email-events/."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import DataError
from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path
from tests.pipeline.importers.crm_samples import (
    EMAIL_PAGES,
    SAMPLES,
    import_hubspot_contacts,
    import_source,
    read_table,
    set_aside,
)

CUSTOMER_COLUMNS = ["customer_id", "signup_at", "country", "acquisition_channel", "email", "first_name",
                    "last_name", "name", "lifecycle_stage"]


def test_contacts_become_customers_keyed_by_their_record_id(tmp_path):
    report = import_hubspot_contacts(tmp_path)

    customers = read_table(tmp_path / "customers.csv")
    assert customers[CUSTOMER_COLUMNS].values.tolist() == [
        ["51234567801", "2024-03-10 14:05:00", "Germany", "organic_search", "anna.berg@example.com", "Anna", "Berg",
         "Anna Berg", "customer"],
        ["51234567802", "2024-03-31 23:58:00", "Germany", "paid_social", "t.nguyen@example.org", "Thi", "Nguyen",
         "Thi Nguyen", "marketingqualifiedlead"],
        # the email as compared: blanks around it trimmed, lower-cased
        ["51234567803", "2024-01-15 10:00:00", "France", "offline", "marc.roux@example.fr", "Marc", "Roux",
         "Marc Roux", "lead"],
        ["51234567804", "2024-04-01 00:03:00", "", "direct_traffic", "newsletter-only@example.net", "", "", "",
         "subscriber"],
        # two people named Jan Kowalski stay two customers
        ["51234567805", "2024-02-01 08:30:00", "Poland", "email_marketing", "jan.kowalski@example.pl", "Jan",
         "Kowalski", "Jan Kowalski", "customer"],
        # a portal's own lifecycle stage is kept as written
        ["51234567806", "2024-02-03 12:00:00", "Poland", "referrals", "jk.krakow@example.pl", "Jan", "Kowalski",
         "Jan Kowalski", "Unqualified"],
        # a custom original source is kept as written
        ["51234567807", "2024-03-05 17:45:00", "Austria", "Partner Portal", "shared@example.de", "Mia", "Lang",
         "Mia Lang", "customer"],
        ["51234567808", "2024-03-06 07:15:00", "Austria", "organic_social", "shared@example.de", "Tom", "Lang",
         "Tom Lang", "evangelist"],
    ]
    assert report["rows_read"] == 9 and report["records"] == 9
    assert report["matched"] == 8 and report["written"] == {"customers": 8}
    assert report["skipped"] == 1 and report["skipped_by_reason"] == {"no record id": 1}
    assert report["unmatched"] == 0
    aside = set_aside(tmp_path, "hubspot-contacts")
    assert aside[["source_row", "reason", "email"]].values.tolist() == [["7", "no record id", "ghost@example.com"]]


def test_an_export_with_internal_names_as_headers_gives_the_same_customers(tmp_path):
    report = import_source("hubspot-contacts",
                           [SAMPLES / "hubspot-contacts" / "hubspot-crm-exports-internal-names-2024-04-05.csv"],
                           tmp_path)

    customers = read_table(tmp_path / "customers.csv")
    assert customers[["customer_id", "signup_at", "acquisition_channel", "email", "lifecycle_stage"]].values.tolist() == [
        ["51234567801", "2024-03-10 14:05:00", "organic_search", "anna.berg@example.com", "customer"],
        ["51234567802", "2024-03-31 23:58:00", "paid_social", "t.nguyen@example.org", "marketingqualifiedlead"],
        ["51234567806", "2024-02-03 12:00:00", "referrals", "jk.krakow@example.pl", "1064277769"],  # a custom stage's id
    ]
    assert report["rows_read"] == 3 and report["matched"] == 3 and report["skipped"] == 0


def test_create_dates_are_read_in_the_zone_the_mapping_names(tmp_path):
    builtin = mapping_path("hubspot-contacts").read_text(encoding="utf-8")
    assert "  timezone: UTC\n" in builtin
    copy = tmp_path / "hubspot-contacts-berlin.yaml"
    copy.write_text(builtin.replace("  timezone: UTC\n", "  timezone: Europe/Berlin\n"), encoding="utf-8")

    run_import(load_mapping(copy), [SAMPLES / "hubspot-contacts" / "hubspot-crm-exports-all-contacts-2024-04-05.csv"],
               tmp_path / "data")

    signup = read_table(tmp_path / "data" / "customers.csv").set_index("customer_id")["signup_at"]
    assert signup["51234567801"] == "2024-03-10 13:05:00"  # CET, +01:00
    assert signup["51234567803"] == "2024-01-15 09:00:00"
    assert signup["51234567802"] == "2024-03-31 21:58:00"  # the evening of the spring switch: CEST, +02:00
    assert signup["51234567804"] == "2024-03-31 22:03:00"  # 1 April 00:03 in Berlin is still 31 March in UTC


def test_one_record_id_on_two_rows_stops_the_import_before_anything_is_written(tmp_path):
    export = tmp_path / "hubspot-crm-exports-all-contacts-2024-04-06.csv"
    export.write_text("Record ID,First Name,Last Name,Email,Create Date\n"
                      "51234567801,Anna,Berg,anna.berg@example.com,2024-03-10 14:05\n"
                      "51234567802,Thi,Nguyen,t.nguyen@example.org,2024-03-31 23:58\n"
                      "51234567801,Anna,Berg,anna.b@example.com,2024-03-12 09:00\n", encoding="utf-8")

    with pytest.raises(DataError) as raised:
        import_source("hubspot-contacts", [export], tmp_path / "data")

    message = str(raised.value)
    assert "'Record ID' (field record_id) [the same record id twice]: 2 row(s)" in message
    assert f"{export.name} row 1: '51234567801'; {export.name} row 3: '51234567801'" in message
    assert not (tmp_path / "data" / "customers.csv").exists()


def test_opens_and_clicks_become_email_interactions_of_the_contacts_imported_before(tmp_path):
    import_hubspot_contacts(tmp_path)
    report = import_source("hubspot-email-events", EMAIL_PAGES, tmp_path)  # customers: the ones in --out

    interactions = read_table(tmp_path / "interactions.csv")
    assert interactions.values.tolist() == [
        ["51234567801", "2024-03-10 15:05:02", "email", "click"],  # created 1710083102310 ms
        ["51234567801", "2024-03-11 08:30:00", "email", "open"],  # recipient Anna.Berg@Example.com
        ["51234567802", "2024-03-12 07:15:30", "email", "open"],  # 1710227730123 ms
        ["51234567803", "2024-03-15 23:59:59", "email", "click"],  # 1710547199999 ms: still the 15th
        ["51234567804", "2024-03-16 10:00:00", "email", "forward"],
        ["51234567805", "2024-03-15 12:00:00", "email", "open"],
    ]
    assert report["customers"] == str(tmp_path / "customers.csv")
    assert report["rows_read"] == 16 and report["records"] == 16  # 8 events on each page
    assert report["matched"] == 6 and report["written"] == {"interactions": 6}
    assert report["skipped"] == 8 and report["skipped_by_reason"] == {
        "made by a machine (filtered by the tool)": 2,  # an image proxy's open, a link scanner's click
        "not the customer's engagement: event type BOUNCE": 1,
        "not the customer's engagement: event type DELIVERED": 1,
        "not the customer's engagement: event type DROPPED": 1,
        "not the customer's engagement: event type PROCESSED": 1,
        "not the customer's engagement: event type SENT": 1,
        "not the customer's engagement: event type STATUSCHANGE": 1,
    }
    assert report["unmatched"] == 2 and report["unmatched_by_reason"] == {
        "email not in customers": 1, "email shared by several customers": 1}


def test_an_open_of_an_unknown_or_a_shared_address_is_set_aside_never_guessed(tmp_path):
    import_hubspot_contacts(tmp_path)
    import_source("hubspot-email-events", EMAIL_PAGES, tmp_path)

    aside = set_aside(tmp_path, "hubspot-email-events")
    unmatched = aside[aside["outcome"] == "unmatched"]
    assert unmatched[["source_file", "source_row", "email", "reason"]].values.tolist() == [
        ["email-events-page-1.json", "6", "shared@example.de", "email shared by several customers"],
        ["email-events-page-1.json", "7", "stranger@example.com", "email not in customers"],
    ]
    machine = aside[aside["reason"] == "made by a machine (filtered by the tool)"]
    assert machine[["source_file", "source_row", "event_type"]].values.tolist() == [
        ["email-events-page-1.json", "3", "CLICK"], ["email-events-page-2.json", "5", "OPEN"]]
    written = json.loads((tmp_path / "imports" / "hubspot-email-events" / "report.json").read_text())
    assert written["unmatched"] == 2 and written["skipped"] == 8


def test_event_times_that_are_not_epoch_numbers_stop_the_import_naming_column_and_rows(tmp_path):
    import_hubspot_contacts(tmp_path)
    page = tmp_path / "email-events-synced.json"
    # a sync tool that rewrote `created` as a date-time text instead of HubSpot's milliseconds
    page.write_text(json.dumps({"hasMore": False, "offset": "x", "events": [
        {"id": "e1", "created": "2024-03-10T14:05:12.000Z", "type": "OPEN", "recipient": "anna.berg@example.com"},
        {"id": "e2", "created": 1710083102310, "type": "CLICK", "recipient": "anna.berg@example.com"},
        {"id": "e3", "created": "2024-03-11T08:30:00.000Z", "type": "OPEN", "recipient": "t.nguyen@example.org"},
    ]}), encoding="utf-8")

    with pytest.raises(DataError) as raised:
        import_source("hubspot-email-events", [page], tmp_path)

    message = str(raised.value)
    assert "'created' (field occurred_at) [not a time in epoch_ms" in message and ": 2 row(s)" in message
    assert (f"{page.name} row 1: '2024-03-10T14:05:12.000Z'; {page.name} row 3: '2024-03-11T08:30:00.000Z'"
            in message)
    assert not (tmp_path / "interactions.csv").exists()
