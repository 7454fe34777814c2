"""Where imported rows go: the data folder's tables assembled from every source's part,
checked against the contract before any is in place, never over a file the import did not
write, and the same bytes on a rerun."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import DataError, OutputError
from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path

SAMPLES = Path(__file__).parent / "samples" / "shopify"
ORDERS = SAMPLES / "orders_export.csv"


def shopify(tmp_path: Path | None = None, **replace: str):
    """The built-in Shopify mapping, or an edited copy of it (old text -> new text)."""
    if not replace:
        return load_mapping(mapping_path("shopify"))
    text = mapping_path("shopify").read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    edited = tmp_path / "mapping.yaml"
    edited.write_text(text)
    return load_mapping(edited)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rerun_gives_the_same_bytes(tmp_path):
    run_import(shopify(), [ORDERS], tmp_path / "data")
    first = folder_bytes(tmp_path / "data")
    run_import(shopify(), [ORDERS], tmp_path / "data")
    assert folder_bytes(tmp_path / "data") == first
    assert {"customers.csv", "transactions.csv", "imports/written.json", "imports/shopify/report.json",
            "imports/shopify/set_aside.csv"} <= set(first)


def test_a_table_the_import_did_not_write_is_never_replaced(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    mine = data / "transactions.csv"
    mine.write_text("transaction_id,customer_id,purchased_at,amount\nt1,c1,2024-01-01,5\n")
    result = CliRunner().invoke(app, ["import", "shopify", str(ORDERS), "--out", str(data), "--customers",
                                      str(SAMPLES / "customers.csv")])
    assert result.exit_code == 7
    assert mine.read_text() == "transaction_id,customer_id,purchased_at,amount\nt1,c1,2024-01-01,5\n"
    assert not (data / "imports" / "shopify").exists()


def test_a_table_edited_since_the_import_is_left_alone(tmp_path):
    data = tmp_path / "data"
    run_import(shopify(), [ORDERS], data)
    edited = (data / "transactions.csv").read_text() + "#9999,x,2024-01-01 00:00:00,1,,,\n"
    (data / "transactions.csv").write_text(edited)
    with pytest.raises(OutputError, match=r"Refusing to replace .*transactions.csv: `churn import` did not write it "
                                          r"\(or it was changed since\)"):
        run_import(shopify(), [ORDERS], data)
    assert (data / "transactions.csv").read_text() == edited


def test_a_parquet_table_of_the_user_is_left_alone(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"transaction_id": ["t"], "customer_id": ["c"]}).to_parquet(data / "transactions.parquet")
    with pytest.raises(OutputError, match="transactions.parquet"):
        run_import(shopify(), [ORDERS], data, SAMPLES / "customers.csv")


def test_customers_come_from_one_source(tmp_path):
    data = tmp_path / "data"
    run_import(shopify(), [ORDERS], data)  # creates the shop's customers
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("Record ID,Email\n1,ann@example.com\n")
    with pytest.raises(OutputError, match="already comes from shopify"):
        run_import(load_mapping(mapping_path("hubspot-contacts")), [contacts], data)


def test_two_sources_giving_one_id_stop_the_import(tmp_path):
    data = tmp_path / "data"
    run_import(shopify(), [ORDERS], data, SAMPLES / "customers.csv")
    second_shop = shopify(tmp_path, **{"source: shopify": "source: shop-outlet"})
    with pytest.raises(DataError, match=r"transactions.transaction_id \[one id from two sources\]: '#1001'"):
        run_import(second_shop, [ORDERS], data, SAMPLES / "customers.csv")


def test_two_sources_of_one_table_are_assembled_and_rerun_alone(tmp_path):
    data = tmp_path / "data"
    run_import(shopify(), [ORDERS], data, SAMPLES / "customers.csv")
    outlet_orders = tmp_path / "outlet.csv"
    outlet_orders.write_text(ORDERS.read_text(encoding="utf-8").replace("#10", "OUT-10"), encoding="utf-8")
    outlet = shopify(tmp_path, **{"source: shopify": "source: shop-outlet"})
    run_import(outlet, [outlet_orders], data, SAMPLES / "customers.csv")
    table = pd.read_csv(data / "transactions.csv", dtype=str)
    assert len(table) == 12 and table["transaction_id"].str.startswith("OUT-").sum() == 6
    # the outlet's export shrinks to its first order: only its part changes
    first_order = "\n".join(outlet_orders.read_text(encoding="utf-8").split("\n#")[0].split("\n")[:4]) + "\n"
    outlet_orders.write_text(first_order, encoding="utf-8")
    run_import(outlet, [outlet_orders], data, SAMPLES / "customers.csv")
    table = pd.read_csv(data / "transactions.csv", dtype=str)
    assert table["transaction_id"].tolist() == ["OUT-1001", "#1001", "#1003", "#1005", "#1005-refund",
                                                "#1003-refund", "#1009"]


def test_a_broken_contract_rule_stops_the_import_before_any_file(tmp_path):
    huge = tmp_path / "orders.csv"
    huge.write_text(ORDERS.read_text(encoding="utf-8").replace(",64.50,", ",640000000000.00,"), encoding="utf-8")
    with pytest.raises(DataError, match=r"transactions.amount \[.*\]: 1 row"):
        run_import(shopify(), [huge], tmp_path / "data", SAMPLES / "customers.csv")
    assert not (tmp_path / "data" / "transactions.csv").exists()
    assert not (tmp_path / "data" / "imports" / "shopify").exists()
