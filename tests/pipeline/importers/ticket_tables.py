"""What the help-desk tests read back: the support tickets an import wrote, as text, and the
tables checked against the data contract with the customers the tickets were linked to."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.tables import Tables, validate_files
from tests.pipeline.importers.crm_samples import read_table

COLUMNS = ["ticket_id", "customer_id", "opened_at", "resolved_at", "category", "priority", "satisfaction"]


def written_tickets(out_dir: Path) -> list[list[str]]:
    return read_table(out_dir / "support_tickets.csv")[COLUMNS].values.tolist()


@contextmanager
def contract_tables(customers: Path, out_dir: Path, run_at: dt.datetime) -> Iterator[Tables]:
    """The customers table and the imported tickets as `churn validate` reads them."""
    tables = validate_files({"customers": customers, "support_tickets": out_dir / "support_tickets.csv"}, out_dir,
                            run_at, None)
    try:
        yield tables
    finally:
        tables.close()
