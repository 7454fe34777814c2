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

from pipeline.errors import DataError
from pipeline.files import file_sha256, run_lock
from pipeline.importers.kinds import CREATES_CUSTOMERS, KINDS, Converted, check_fields
from pipeline.importers.linking import Customers, customers_table, read_customers
from pipeline.importers.mapping import SOURCES_DIR, SourceMapping
from pipeline.importers.publishing import IMPORTS, customers_source, previous_report, publish, write_account
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


def typed_records(path: Path, mapping: SourceMapping, problems: Problems, label: str) -> pd.DataFrame:
    """One export file's records, typed by the mapping; its text is let go as soon as it is
    typed (an import holds one file's text at a time, not every file's beside their records)."""
    frame, decimal = read_file(path, mapping, label)
    return type_fields(frame, mapping, decimal, problems)


def run_import(mapping: SourceMapping, files: list[Path], out_dir: Path, customers: Path | None = None) -> dict:
    """Convert the export `files` into tables in `out_dir`; return the report (also written to
    out_dir/imports/<source>/report.json). Rows are linked to the customers table at
    `customers`, by default the one already in `out_dir`; an orders export with none creates
    the customers from its emails. One import at a time writes into a folder (its run lock)."""
    out_dir, files = Path(out_dir), [Path(f) for f in files]
    check_fields(mapping)
    with run_lock(out_dir / IMPORTS, job="import", setting="--out"):
        index = customers_to_link(mapping, out_dir, customers)
        problems = Problems(mapping.source)
        typed = pd.concat([typed_records(path, mapping, problems, label)
                           for path, label in zip(files, file_labels(files), strict=True)], ignore_index=True)
        problems.raise_if_any(mapping)
        if typed.empty:
            log.warning("%s: the export holds no records; nothing was imported, and %s is as it was",
                        mapping.source, out_dir)
            return import_report(mapping, files, index, 0, None)
        rows_read = len(typed)
        converted = KINDS[mapping.kind](typed, mapping, index, problems)
        del typed  # what is written is in `converted`: the records need not stay in memory while it is
        report = import_report(mapping, files, index, rows_read, converted)
        if not any(len(table) for table in converted.tables.values()):
            write_account(out_dir, mapping.source, converted.set_aside, report)
            raise DataError(nothing_written(report, out_dir))
        warn_of_replaced_files(out_dir, report)
        publish(out_dir, mapping.source, converted.tables, converted.set_aside, report, dt.datetime.now(dt.UTC))
    return report


def file_labels(files: list[Path]) -> list[str]:
    """How each file is named in messages and set-aside rows: its name, or the path as given
    when two files share a name (BigQuery shards a/000000000000.json, b/000000000000.json)."""
    names = [f.name for f in files]
    return names if len(set(names)) == len(names) else [str(f) for f in files]


def import_report(mapping: SourceMapping, files: list[Path], index: Customers | None, rows_read: int,
                  converted: Converted | None) -> dict:
    """What the import read, wrote, matched and left out, and why (report.json)."""
    unmatched = converted.unmatched if converted else {}
    skipped = converted.skipped if converted else {}
    return {
        "source": mapping.source,
        "kind": mapping.kind,
        "mapping": shown_path(mapping.path),
        "files": [{"name": label, "sha256": file_sha256(path)} for path, label in zip(files, file_labels(files),
                                                                                       strict=True)],
        "customers": shown_path(index.path) if index is not None else None,
        "rows_read": rows_read,
        "records": converted.records if converted else 0,
        "matched": converted.matched if converted else 0,
        "unmatched": sum(unmatched.values()),
        "unmatched_by_reason": dict(sorted(unmatched.items())),
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "written": {name: len(frame) for name, frame in converted.tables.items()} if converted else {},
    }


def shown_path(path: Path | None) -> str | None:
    """A path as a report shows it: a built-in mapping relative to the project, so that the
    report's bytes do not depend on where the project lives; any other path as given."""
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(SOURCES_DIR.parents[1]))
    except ValueError:
        return str(path)


def nothing_written(report: dict, out_dir: Path) -> str:
    reasons = "; ".join(f"{reason}: {count:,}" for kind in ("unmatched_by_reason", "skipped_by_reason")
                        for reason, count in report[kind].items())
    return (f"{report['source']}: none of the export's {report['records']:,} records could be written ({reasons}). "
            f"Nothing in {out_dir} changed but the account of this import: every record, with its file, row and "
            f"reason, is in {out_dir / IMPORTS / report['source'] / 'set_aside.csv'}. Check that the customers "
            "table (--customers) is the one these records belong to, and the mapping's value maps.")


def warn_of_replaced_files(out_dir: Path, report: dict) -> None:
    """Say so when the source's earlier import read files this one does not: its rows are
    replaced by these (an import holds a source's whole export, not one more day of it)."""
    earlier = previous_report(out_dir, report["source"])
    if earlier is None:
        return
    now = {(f["name"], f["sha256"]) for f in report["files"]}
    gone = sorted(f["name"] for f in earlier.get("files", []) if (f["name"], f["sha256"]) not in now)
    if gone:
        log.warning("%s: this import replaces the %s rows imported earlier from %s; to keep them, pass those files "
                    "again with the new ones", report["source"], f"{sum(earlier.get('written', {}).values()):,}",
                    ", ".join(gone))
