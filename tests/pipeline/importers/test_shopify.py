"""Shopify's orders export -> transactions: line items, store-time offsets across daylight-
saving switches, refunds without a date, only paid orders, and the same file re-saved by a
German Excel. The expected figures are worked out by hand from samples/shopify/."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.importers import run_import
from pipeline.importers.kinds.orders import customer_id_of_email
from pipeline.importers.mapping import load_mapping, mapping_path

SAMPLES = Path(__file__).parent / "samples" / "shopify"
ROOT = Path(__file__).resolve().parents[3]
MONEY = ("Subtotal", "Shipping", "Taxes", "Total", "Discount Amount", "Refunded Amount", "Lineitem price",
         "Outstanding Balance")


def shopify():
    return load_mapping(mapping_path("shopify"))


def read_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_paid_orders_become_purchases_and_refunds_negative_transactions(tmp_path):
    report = run_import(shopify(), [SAMPLES / "orders_export.csv"], tmp_path / "data", SAMPLES / "customers.csv")

    rows = read_table(tmp_path / "data" / "transactions.csv")
    assert rows[["transaction_id", "customer_id", "purchased_at", "amount", "discount_amount"]].values.tolist() == [
        ["#1001", "c1", "2024-03-10 13:05:00", "64.5", "0"],  # two line items, one order; +0100 -> UTC
        ["#1003", "c2", "2024-03-30 09:00:00", "23.8", "0"],
        ["#1005", "c3", "2024-03-31 01:01:00", "100", "0"],  # 03:01 +0200, just after the spring switch
        ["#1005-refund", "c3", "2024-03-31 01:01:00", "-30", ""],  # no refund date, no cancellation: the payment's
        ["#1003-refund", "c2", "2024-04-05 10:00:00", "-23.8", ""],  # dated at the cancellation
        ["#1009", "c1", "2024-10-27 01:30:00", "1234.56", "10"],  # 02:30 +0100, in the autumn repeat hour
    ]
    assert rows["sales_channel"].tolist() == ["web", "pos", "web", "web", "pos", "web"]
    assert report["rows_read"] == 15 and report["records"] == 12  # line items -> orders
    assert report["matched"] == 4 and report["written"] == {"transactions": 6}
    assert report["skipped_by_reason"] == {
        "not paid: financial status authorized": 1, "not paid: financial status expired": 1,
        "not paid: financial status pending": 1, "not paid: financial status voided": 1,
        "zero total (a free order)": 1,
    }
    # never attached to a guess: no email, an email no customer has, an email two customers share
    assert report["unmatched_by_reason"] == {"email not in customers": 1, "email shared by several customers": 1,
                                             "no email to identify the customer": 1}
    aside = read_table(tmp_path / "data" / "imports" / "shopify" / "set_aside.csv")
    assert sorted(aside.loc[aside["outcome"] == "unmatched", "order_id"]) == ["#1004", "#1006", "#1007"]
    assert aside["source_row"].tolist() == sorted(aside["source_row"].astype(int).astype(str).tolist(), key=int)


def test_without_customers_the_shop_customers_are_created_from_emails(tmp_path):
    report = run_import(shopify(), [SAMPLES / "orders_export.csv"], tmp_path / "data")

    customers = read_table(tmp_path / "data" / "customers.csv")
    # " Ann@Example.COM " and "ANN@example.com" are one customer; two "Ann Lee"s stay two
    assert sorted(customers["email"]) == ["ann@example.com", "bob@example.com", "carl@example.com",
                                          "shared@example.com", "zed@example.com"]
    assert customers.set_index("email").loc["carl@example.com", "name"] == "Ann Lee"
    assert customers.set_index("email").loc["zed@example.com", "name"] == "Zoë Zee"
    ann = customer_id_of_email("ann@example.com")
    assert customers.set_index("email").loc["ann@example.com", "customer_id"] == ann
    transactions = read_table(tmp_path / "data" / "transactions.csv")
    assert len(transactions) == 8 and (transactions["customer_id"] == ann).sum() == 2
    assert report["unmatched_by_reason"] == {"no email to identify the customer": 1}


def german_excel_copy(source: Path, target: Path) -> Path:
    """The export as a German Excel saves it again: `;`, decimal comma, Windows-1252, CRLF,
    and the 13-digit Id in scientific notation."""
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in MONEY:
            row[column] = row[column].replace(".", ",")
        if row["Id"]:
            row["Id"] = f"{int(row['Id']):.5E}".replace(".", ",")  # 5,51235E+12
    with target.open("w", encoding="cp1252", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=";", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return target


def test_a_german_excel_resave_gives_the_same_tables(tmp_path):
    resaved = german_excel_copy(SAMPLES / "orders_export.csv", tmp_path / "orders_export_de.csv")
    assert "5,51235E+12" in resaved.read_text(encoding="cp1252") and b"Zo\xeb" in resaved.read_bytes()

    run_import(shopify(), [SAMPLES / "orders_export.csv"], tmp_path / "original")
    run_import(shopify(), [resaved], tmp_path / "resaved")
    for table in ("transactions", "customers"):
        original = (tmp_path / "original" / f"{table}.csv").read_bytes()
        assert (tmp_path / "resaved" / f"{table}.csv").read_bytes() == original


def test_an_order_id_rounded_by_a_spreadsheet_is_refused(tmp_path):
    """A mapping keyed on the numeric Id cannot use a file where Excel rounded it."""
    edited = tmp_path / "shopify_by_id.yaml"
    edited.write_text(mapping_path("shopify").read_text().replace("column: Name, type: id", "column: Id, type: id"))
    resaved = german_excel_copy(SAMPLES / "orders_export.csv", tmp_path / "orders_export_de.csv")
    with pytest.raises(DataError, match=r"'Id' \(field order_id\) \[an id shown in scientific notation.*row 1: "
                                        r"'5,51235E\+12'"):
        run_import(load_mapping(edited), [resaved], tmp_path / "data")
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").glob("*.csv"))


def test_an_unparseable_payment_time_stops_the_import_naming_rows(tmp_path):
    text = (SAMPLES / "orders_export.csv").read_text(encoding="utf-8")
    broken = tmp_path / "orders_export.csv"
    broken.write_text(text.replace("2024-03-30 10:00:00 +0100", "30/03/2024 10h00"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "import", "shopify", str(broken), "--out",
                             str(tmp_path / "data")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr + result.stdout
    assert "'Paid at' (field paid_at) [not a time in the formats '%Y-%m-%d %H:%M:%S %z'" in result.stderr
    # data rows count from 1 after the header; #1001 is rows 1-2 (its notes span two lines of the file)
    assert "orders_export.csv row 4: '30/03/2024 10h00'" in result.stderr
    assert not (tmp_path / "data" / "transactions.csv").exists()


def test_a_file_with_another_delimiter_than_the_mapping_says_is_named(tmp_path):
    resaved = german_excel_copy(SAMPLES / "orders_export.csv", tmp_path / "orders_export_de.csv")
    edited = tmp_path / "shopify_comma.yaml"
    edited.write_text(mapping_path("shopify").read_text().replace("delimiter: auto", 'delimiter: ","'))
    with pytest.raises(DataError, match=r"orders_export_de.csv lacks the column\(s\).*\[missing column\]: order_id "
                                        r"\(looked for 'Name'\).*is the delimiter wrong"):
        run_import(load_mapping(edited), [resaved], tmp_path / "data")
