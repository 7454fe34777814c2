"""The data contract is defined once; the README documents the same tables and columns."""

from __future__ import annotations

from pathlib import Path

from pipeline.contract import TABLES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_row(table: str) -> str:
    return next(line for line in README.splitlines() if line.startswith(f"| {table} |"))


def test_readme_lists_every_table_and_column_of_the_contract():
    for table in TABLES.values():
        row = readme_row(table.name)
        for column in table.columns:
            shown = f"**{column.name}**" if column.required else column.name
            assert shown in row, f"README's {table.name} row lacks {shown}"


def test_keys_are_required_and_only_customers_take_extra_columns():
    for table in TABLES.values():
        if table.key:
            assert table.column(table.key).required
        assert table.allow_extra_columns == (table.name == "customers")
    assert [t.name for t in TABLES.values() if t.required] == ["customers", "transactions"]
