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
from pipeline.importers.linking import customers_table, read_customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.publishing import customers_source, publish
from pipeline.importers.reading import read_file
from pipeline.importers.values import Problems, type_fields

log = logging.getLogger(__name__)


def has_customers_to_link(out_dir: Path, mapping: SourceMapping) -> bool:
    """True when the data folder holds a customers table that this source did not create
    itself (an orders import that made the shop's customers makes them again on a rerun)."""
    return customers_table(out_dir) is not None and customers_source(out_dir) != mapping.source


def run_import(mapping: SourceMapping, files: list[Path], out_dir: Path, customers: Path | None = None) -> dict:
    """Convert the export `files` into tables in `out_dir`; return the report (also written to
    out_dir/imports/<source>/report.json). Rows are linked to the customers table at
    `customers`, by default the one already in `out_dir`; an orders export with none creates
    the customers from its emails."""
    out_dir = Path(out_dir)
    linked_to = customers if customers is not None else (out_dir if has_customers_to_link(out_dir, mapping) else None)
    if linked_to is None and mapping.kind not in CREATES_CUSTOMERS:
        linked_to = out_dir  # read_customers says what is missing and what to import first
    index = read_customers(linked_to, mapping.link) if linked_to is not None and mapping.kind != "contacts" else None
    problems = Problems(mapping.source)
    parts = [read_file(Path(path), mapping) for path in files]
    typed = pd.concat([type_fields(frame, mapping, decimal, problems) for frame, decimal in parts], ignore_index=True)
    problems.raise_if_any(mapping)
    converted = KINDS[mapping.kind](typed, mapping, index, problems)
    report = {
        "source": mapping.source,
        "kind": mapping.kind,
        "mapping": str(mapping.path),
        "files": [{"name": Path(f).name, "sha256": file_sha256(Path(f))} for f in files],
        "customers": str(index.path) if index is not None else None,
        "rows_read": len(typed),
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

