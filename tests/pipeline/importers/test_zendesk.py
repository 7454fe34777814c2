"""Zendesk: the tickets CSV export and the incremental API's JSON pages -> support_tickets.
Every expected figure is worked out by hand from samples/zendesk/ and its customers.csv:

    CUST-0042 Anna Berg   anna@example.com            CUST-0300 Jo Park    family@example.org
    CUST-0107 Marc Roux   marc.roux@new-mail.example  CUST-0301 Sam Park   Family@Example.org
    CUST-0200 Anna Berg   anna.berg@example.net       CUST-0400 Thi Nguyen " T.Nguyen@Example.org "
"""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path
from tests.pipeline.importers.crm_samples import SAMPLES, set_aside
from tests.pipeline.importers.ticket_tables import contract_tables, written_tickets

ZENDESK = SAMPLES / "zendesk"
CUSTOMERS = ZENDESK / "customers.csv"
CSV_EXPORT = ZENDESK / "export-2024-03-31.csv"
PAGES = [ZENDESK / "incremental-tickets-page-1.json", ZENDESK / "incremental-tickets-page-2.json"]
SHOW_MANY = ZENDESK / "tickets-show-many.json"
RUN_AT = dt.datetime(2024, 6, 1)


def import_zendesk(files, out_dir) -> dict:
    return run_import(load_mapping(mapping_path("zendesk")), files, out_dir, CUSTOMERS)


@pytest.fixture(scope="module")
def csv_import(tmp_path_factory):
    out = tmp_path_factory.mktemp("zendesk-csv")
    return import_zendesk([CSV_EXPORT], out), out


def test_csv_export_counts_every_ticket_once(csv_import):
    report, _ = csv_import
    assert report["rows_read"] == 11 and report["records"] == 11
    assert report["matched"] == 8 and report["written"] == {"support_tickets": 8}
    assert report["skipped"] == 0
    assert report["unmatched"] == 3 and report["unmatched_by_reason"] == {
        "email not in customers": 1,
        "email shared by several customers": 1,
        "no external_id or email to identify the customer": 1,
    }


def test_csv_tickets_are_linked_typed_and_rated_by_the_csat_rule(csv_import):
    _, out = csv_import
    assert written_tickets(out) == [
        # external id CUST-0107 links Marc although his email changed since; Bad -> 1
        ["4514", "CUST-0107", "2024-03-02 10:00:00", "2024-03-04 16:45:10", "problem", "urgent", "1"],
        ["4512", "CUST-0042", "2024-03-10 14:05:12", "2024-03-11 09:30:40", "incident", "high", "5"],
        # the other Anna Berg, by her own email; Offered (not answered) is no rating
        ["4515", "CUST-0200", "2024-03-12 08:00:00", "2024-03-12 09:15:00", "question", "low", ""],
        # " Anna@Example.COM " is anna@example.com; a pending ticket with no type
        ["4516", "CUST-0042", "2024-03-14 11:20:00", "", "", "normal", ""],
        # reopened: Open, so no resolution time although Solved at is filled
        ["4517", "CUST-0200", "2024-03-15 09:00:00", "", "problem", "high", "1"],
        # external id CUST-9999 is no customer: linked by the email instead; the long label
        ["4521", "CUST-0107", "2024-03-20 07:45:00", "2024-03-21 12:00:00", "task", "normal", "5"],
        ["4522", "CUST-0400", "2024-03-25 16:30:00", "", "incident", "high", ""],
        # Not Offered is no rating
        ["4513", "CUST-0400", "2024-03-31 23:58:44", "", "question", "normal", ""],
    ]


def test_csv_tickets_without_one_customer_are_set_aside_with_the_reason(csv_import):
    _, out = csv_import
    aside = set_aside(out, "zendesk")
    assert aside[["source_row", "outcome", "reason", "ticket_id", "email"]].values.tolist() == [
        ["7", "unmatched", "email not in customers", "4518", "stranger@example.com"],
        ["8", "unmatched", "no external_id or email to identify the customer", "4519", ""],
        # Jo and Sam Park share one address: the ticket goes to neither
        ["9", "unmatched", "email shared by several customers", "4520", "family@example.org"],
    ]


def test_imported_tickets_pass_the_data_contract(csv_import):
    _, out = csv_import
    with contract_tables(CUSTOMERS, out, RUN_AT) as tables:
        assert tables.row_counts == {"customers": 6, "support_tickets": 8}
        assert tables.quarantined == {"support_tickets": 0}  # every ticket refers to a known customer
        open_tickets = tables.query("SELECT ticket_id FROM support_tickets WHERE resolved_at IS NULL ORDER BY 1")
        assert open_tickets["ticket_id"].tolist() == ["4513", "4516", "4517", "4522"]


@pytest.mark.parametrize("pages", [PAGES, PAGES[::-1]], ids=["in page order", "last page first"])
def test_incremental_pages_give_each_ticket_once_in_its_latest_version(tmp_path, pages):
    report = import_zendesk(pages, tmp_path)

    assert written_tickets(tmp_path) == [
        # closed, offered a survey that was not answered
        ["4604", "CUST-0107", "2024-03-28 15:00:00", "2024-03-29 10:30:00", "problem", "low", ""],
        ["4600", "CUST-0042", "2024-04-01 08:00:00", "2024-04-01 11:59:00", "incident", "high", "5"],
        # open and unoffered on page 1, solved, escalated and rated bad on page 2
        ["4601", "CUST-0400", "2024-04-02 09:30:00", "2024-04-03 08:59:00", "question", "high", "1"],
        ["4605", "CUST-0042", "2024-04-03 11:00:00", "", "", "", ""],
    ]
    assert report["rows_read"] == 7 and report["records"] == 7
    assert report["matched"] == 4 and report["written"] == {"support_tickets": 4}
    assert report["skipped"] == 2
    assert report["skipped_by_reason"] == {"an earlier version of the same ticket": 1, "status deleted": 1}
    assert report["unmatched_by_reason"] == {"no external_id or email to identify the customer": 1}
    aside = set_aside(tmp_path, "zendesk")
    assert sorted(aside[["source_file", "ticket_id", "reason", "updated_at"]].values.tolist()) == [
        ["incremental-tickets-page-1.json", "4601", "an earlier version of the same ticket", "2024-04-02 10:00:00"],
        ["incremental-tickets-page-1.json", "4602", "status deleted", "2024-04-02 11:05:00"],
        # a messaging user without email or external id
        ["incremental-tickets-page-1.json", "4603", "no external_id or email to identify the customer",
         "2024-04-02 15:20:00"],
    ]


def test_metric_sets_side_loaded_as_a_top_level_list_give_the_solved_times(tmp_path):
    report = import_zendesk([SHOW_MANY], tmp_path)

    assert written_tickets(tmp_path) == [
        ["4700", "CUST-0042", "2024-05-02 07:00:00", "2024-05-02 09:45:00", "incident", "urgent", "5"],
        # reopened: its metric set keeps the first solve, the ticket is open again
        ["4701", "CUST-0400", "2024-05-03 08:00:00", "", "question", "normal", ""],
    ]
    assert report["rows_read"] == 3 and report["matched"] == 2 and report["skipped"] == 0
    assert report["unmatched_by_reason"] == {"email not in customers": 1}
