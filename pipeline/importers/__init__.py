"""`churn import`: a system's standard export -> the data contract's tables.

    export files -> read as text (reading) -> typed by the mapping (values) -> converted by
    its kind, each record linked to a customer or set aside (kinds/, linking) -> checked
    against the contract and put in the data folder (publishing) -> report

The mapping of each source is a YAML file under configs/sources/ (mapping)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd

from pipeline.files import file_sha256
from pipeline.importers.kinds import CREATES_CUSTOMERS, KINDS
from pipeline.importers.linking import Customers, customers_table, read_customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.publishing import customers_source, publish
from pipeline.importers.reading import read_file
from pipeline.importers.values import Problems, type_fields

log = logging.getLogger(__name__)


def customers_to_link(mapping: SourceMapping, out_dir: Path, given: Path | None) -> Customers | None:
    """The customers the rows are linked to: the given table, else the data folder's, unless
    the source makes the customers itself (contacts; a shop's orders when there are none, or
    when its own earlier import made them, so that a rerun makes them again)."""
    if mapping.kind == "contacts":
        return None
    if given is not None:
        return read_customers(given, mapping.link)
    made_here = customers_table(out_dir) is None or customers_source(out_dir) == mapping.source
    if made_here and mapping.kind in CREATES_CUSTOMERS:
        return None
    return read_customers(out_dir, mapping.link)  # without a table, it says what to import first


def typed_records(path: Path, mapping: SourceMapping, problems: Problems) -> pd.DataFrame:
    """One export file's records, typed by the mapping; its text is let go as soon as it is
    typed (an import holds one file's text at a time, not every file's beside their records)."""
    frame, decimal = read_file(path, mapping)
    return type_fields(frame, mapping, decimal, problems)


def run_import(mapping: SourceMapping, files: list[Path], out_dir: Path, customers: Path | None = None) -> dict:
    """Convert the export `files` into tables in `out_dir`; return the report (also written to
    out_dir/imports/<source>/report.json). Rows are linked to the customers table at
    `customers`, by default the one already in `out_dir`; an orders export with none creates
    the customers from its emails."""
    out_dir = Path(out_dir)
    index = customers_to_link(mapping, out_dir, customers)
    problems = Problems(mapping.source)
    typed = pd.concat([typed_records(Path(path), mapping, problems) for path in files], ignore_index=True)
    problems.raise_if_any(mapping)
    rows_read = len(typed)
    converted = KINDS[mapping.kind](typed, mapping, index, problems)
    del typed  # what is written is in `converted`: the records need not stay in memory while it is
    report = {
        "source": mapping.source,
        "kind": mapping.kind,
        "mapping": str(mapping.path),
        "files": [{"name": Path(f).name, "sha256": file_sha256(Path(f))} for f in files],
        "customers": str(index.path) if index is not None else None,
        "rows_read": rows_read,
        "records": converted.records,
        "matched": converted.matched,
        "unmatched": sum(converted.unmatched.values()),
        "unmatched_by_reason": dict(sorted(converted.unmatched.items())),
        "skipped": sum(converted.skipped.values()),
        "skipped_by_reason": dict(sorted(converted.skipped.items())),
        "written": {name: len(frame) for name, frame in converted.tables.items()},
    }
    publish(out_dir, mapping.source, converted.tables, converted.set_aside, report, dt.datetime.now(dt.UTC))
    return report

