"""Exports as they arrive in real life: re-saved with another decimal mark, compressed, empty,
given twice, from two days that disagree, or not an export at all. Each is read right or
stopped with one paragraph and an exit code, never a traceback."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError, DataError
from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path
from tests.conftest import hold_lock_in_child
from tests.pipeline.importers.crm_samples import EMAIL_PAGES, GA4_EVENTS, import_hubspot_contacts, import_source

ORDERS = Path(__file__).parent / "samples" / "shopify" / "orders_export.csv"
CUSTOMERS = ORDERS.parent / "customers.csv"
HEADER = ("Name,Email,Financial Status,Paid at,Created at,Total,Refunded Amount,Cancelled at\n")


def orders_file(path: Path, rows: list[str], delimiter: str = ",") -> Path:
    """A small orders export: the header split by `delimiter`, and the rows as written."""
    path.write_text(HEADER.replace(",", delimiter) + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def amounts(out: Path) -> dict[str, float]:
    table = pd.read_csv(out / "transactions.csv", dtype={"transaction_id": str})
    return dict(zip(table["transaction_id"], table["amount"], strict=True))


def test_the_decimal_mark_is_read_from_the_numbers_not_only_the_delimiter(tmp_path):
    # a ;-separated file with decimal points (a Swiss or a hand-made export), and a tab-
    # separated one with decimal commas (a German "Unicode text" save): never x100
    points = orders_file(tmp_path / "points.csv", ["#1;ann@example.com;paid;2024-03-10 14:05:00 +0100;"
                                                   "2024-03-10 14:05:00 +0100;12.50;0.5;",
                                                   "#2;bob@example.com;paid;2024-03-11 14:05:00 +0100;"
                                                   "2024-03-11 14:05:00 +0100;1'234.50;0.00;"], ";")
    run_import(load_mapping(mapping_path("shopify")), [points], tmp_path / "a")
    assert amounts(tmp_path / "a") == {"#1": 12.5, "#1-refund": -0.5, "#2": 1234.5}
    commas = orders_file(tmp_path / "commas.csv", ["#1\tann@example.com\tpaid\t2024-03-10 14:05:00 +0100\t"
                                                   "2024-03-10 14:05:00 +0100\t1.234,50\t2,5\t"], "\t")
    run_import(load_mapping(mapping_path("shopify")), [commas], tmp_path / "b")
    assert amounts(tmp_path / "b") == {"#1": 1234.5, "#1-refund": -2.5}


def test_a_number_that_fits_neither_decimal_mark_stops_the_import(tmp_path):
    mixed = orders_file(tmp_path / "mixed.csv", ["#1,a@example.com,paid,2024-03-10 14:05:00 +0100,,12.50,0,",
                                                 '#2,b@example.com,paid,2024-03-10 14:05:00 +0100,,"12,50",0,'])
    with pytest.raises(DataError, match=r"'Total' \(field total\) \[not a number \(decimal mark '.'\)\]: 1 row"):
        run_import(load_mapping(mapping_path("shopify")), [mixed], tmp_path / "data")


def test_an_order_from_two_exports_that_disagree_is_not_merged(tmp_path):
    january = orders_file(tmp_path / "jan.csv", ["#1,a@example.com,paid,2024-01-10 10:00:00 +0100,,50.00,0.00,"])
    february = orders_file(tmp_path / "feb.csv", ["#1,a@example.com,refunded,2024-01-10 10:00:00 +0100,,50.00,"
                                                  "50.00,2024-02-20 10:00:00 +0100"])
    with pytest.raises(DataError, match=r"one order number with two different order rows.*feb.csv row 1"):
        run_import(load_mapping(mapping_path("shopify")), [january, february], tmp_path / "data")


def test_the_same_export_given_twice_counts_each_order_once(tmp_path):
    copy = shutil.copy(ORDERS, tmp_path / "orders_export_copy.csv")
    once = run_import(load_mapping(mapping_path("shopify")), [ORDERS], tmp_path / "once", CUSTOMERS)
    twice = run_import(load_mapping(mapping_path("shopify")), [ORDERS, Path(copy)], tmp_path / "twice", CUSTOMERS)
    assert (tmp_path / "twice" / "transactions.csv").read_bytes() == (tmp_path / "once" / "transactions.csv").read_bytes()
    assert twice["records"] == once["records"] + 12
    assert twice["skipped_by_reason"]["the same order again (an export given twice)"] == 12


def test_negative_and_excessive_refunds_are_refused(tmp_path):
    bad = orders_file(tmp_path / "bad.csv", ["#1,a@example.com,paid,2024-01-10 10:00:00 +0100,,-5.00,0.00,",
                                             "#2,a@example.com,refunded,2024-01-10 10:00:00 +0100,,50.00,80.00,",
                                             "#3,a@example.com,paid,2024-01-10 10:00:00 +0100,,50.00,-10.00,"])
    with pytest.raises(DataError) as stopped:
        run_import(load_mapping(mapping_path("shopify")), [bad], tmp_path / "data")
    message = str(stopped.value)
    assert "[a negative order total]: 1 row(s); e.g. bad.csv row 1: -5.0" in message
    assert "[more refunded than the order's total]: 1 row(s); e.g. bad.csv row 2: 80.0" in message
    assert "[a negative refunded amount]: 1 row(s); e.g. bad.csv row 3: -10.0" in message


def test_email_events_saved_twice_count_once(tmp_path):
    import_hubspot_contacts(tmp_path / "data")
    once = import_source("hubspot-email-events", EMAIL_PAGES, tmp_path / "data")
    copy = shutil.copy(EMAIL_PAGES[1], tmp_path / "email-events-page-2-again.json")
    again = import_source("hubspot-email-events", [*EMAIL_PAGES, Path(copy)], tmp_path / "data")
    assert again["written"] == once["written"]
    pages = json.loads(EMAIL_PAGES[1].read_text())["events"]
    assert again["skipped_by_reason"]["the same event again (its id seen before)"] == len(pages)


def test_a_compressed_extract_is_read_as_what_it_holds(tmp_path):
    import_hubspot_contacts(tmp_path / "plain")
    import_hubspot_contacts(tmp_path / "packed")
    packed = tmp_path / (GA4_EVENTS.name + ".gz")
    packed.write_bytes(gzip.compress(GA4_EVENTS.read_bytes()))
    import_source("ga4", [GA4_EVENTS], tmp_path / "plain")
    import_source("ga4", [packed], tmp_path / "packed")
    plain = (tmp_path / "plain" / "interactions.csv").read_bytes()
    assert (tmp_path / "packed" / "interactions.csv").read_bytes() == plain


def test_an_export_without_records_imports_nothing_and_says_so(tmp_path, caplog):
    empty_page = tmp_path / "page.json"
    empty_page.write_text(json.dumps({"events": [], "hasMore": False, "offset": "x"}))
    import_hubspot_contacts(tmp_path / "data")
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    report = import_source("hubspot-email-events", [empty_page], tmp_path / "data")
    assert report["rows_read"] == 0 and report["written"] == {}
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before
    assert "the export holds no records" in caplog.text


def test_an_export_of_which_nothing_can_be_linked_stops_and_shows_why(tmp_path):
    anonymous = tmp_path / "events.json"  # BigQuery leaves out a NULL user_id: no event is signed in
    anonymous.write_text(json.dumps({"event_timestamp": "1710079512000000", "event_name": "page_view",
                                     "user_pseudo_id": "123.456", "platform": "WEB"}) + "\n")
    import_hubspot_contacts(tmp_path / "data")
    result = CliRunner().invoke(app, ["import", "ga4", str(anonymous), "--out", str(tmp_path / "data")])
    assert result.exit_code == 3 and "Traceback" not in result.output
    aside = pd.read_csv(tmp_path / "data" / "imports" / "ga4" / "set_aside.csv")
    assert aside["reason"].tolist() == ["anonymous, and no one had signed in on the device by the end of that day"]
    assert not (tmp_path / "data" / "interactions.csv").exists()


def test_a_mapping_copy_without_a_field_its_kind_reads_is_a_config_error(tmp_path):
    edited = tmp_path / "shop.yaml"
    edited.write_text(mapping_path("shopify").read_text().replace("  total: {column: Total", "  order_total: {column: Total"))
    with pytest.raises(ConfigError, match=r"lacks the field\(s\) \['total'\]"):
        run_import(load_mapping(edited), [ORDERS], tmp_path / "data")


@pytest.mark.parametrize(("content", "says"), [
    (b"PK\x03\x04 a workbook", "is an Excel workbook or a zip archive"),
    (b"Name,Email\n#1,\x81\x8d@example.com\n", "is not text in UTF-8 or Windows-1252"),
    (b"Name,Email,Email,Financial Status,Paid at,Total\n#1,,a@example.com,paid,,5\n", "holds the column(s) ['Email']"),
])
def test_files_that_are_not_the_export_are_named(tmp_path, content, says):
    path = tmp_path / "orders_export.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["import", "shopify", str(path), "--out", str(tmp_path / "data")])
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert says in result.output


def test_a_folder_given_as_an_export_is_named(tmp_path):
    result = CliRunner().invoke(app, ["import", "shopify", str(tmp_path), "--out", str(tmp_path / "data")])
    assert result.exit_code == 3 and "is a folder; pass the export files in it" in result.output


def test_one_import_at_a_time_writes_into_a_folder(tmp_path):
    (tmp_path / "data" / "imports").mkdir(parents=True)
    child = hold_lock_in_child(tmp_path / "data" / "imports")
    try:
        result = CliRunner().invoke(app, ["import", "shopify", str(ORDERS), "--out", str(tmp_path / "data")])
    finally:
        child.kill()
        child.wait()
    assert result.exit_code == 5 and "Another import holds" in result.output
    assert not (tmp_path / "data" / "transactions.csv").exists()


def test_an_import_that_drops_files_of_the_last_one_warns(tmp_path, caplog):
    import_hubspot_contacts(tmp_path / "data")
    import_source("hubspot-email-events", EMAIL_PAGES, tmp_path / "data")
    import_source("hubspot-email-events", EMAIL_PAGES[1:], tmp_path / "data")
    assert "replaces the 6 rows imported earlier from email-events-page-1.json" in caplog.text
