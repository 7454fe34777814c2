"""Fixtures of the demo-world tests: one generated world, and DuckDB views over it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipeline.contract import TABLES
from pipeline.demo.world import generate_world


@pytest.fixture(scope="package")
def world(tmp_path_factory) -> Path:
    """One generated world of 2,000 customers, shared by the generator and the truth tests."""
    out = tmp_path_factory.mktemp("world") / "data"
    generate_world(out, 2_000, seed=8)
    return out


@pytest.fixture(scope="package")
def con(world: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name in TABLES:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM '{world / name}.parquet'")
    con.execute(f"CREATE VIEW truth AS SELECT * FROM '{world}/truth/customers.parquet'")
    return con
