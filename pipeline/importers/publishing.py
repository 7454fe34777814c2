"""Where an import's rows go: a data folder that `churn validate`, `train` and `score` read.

    DIR/<table>.csv                  the contract's tables, assembled from every source's part
    DIR/imports/<source>/<table>.csv one source's converted rows (its part of each table)
    DIR/imports/<source>/set_aside.csv  the records it left out, where they were and why
    DIR/imports/<source>/report.json    what it read, wrote, matched and left out
    DIR/imports/written.json         the table files this command wrote, by content hash

Several sources feed one table (HubSpot's email events and GA4's web events are both
interactions): re-importing a source replaces its part and the table is assembled again,
so imports can be rerun in any order. The customers table comes from one source only.

A table file the import did not write (a user's own customers.csv, or one edited since)
is never replaced: the import stops and says so. Every file is written beside its target
and renamed into place, and the tables are checked against the data contract before any
of them is; a rerun on the same exports gives the same bytes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import TABLES
from pipeline.errors import DataError, OutputError
from pipeline.files import atomic_path, atomic_write_text, file_sha256, output_error
from pipeline.tables import validate_files

IMPORTS = "imports"
RECORD = "written.json"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def publish(out_dir: Path, source: str, tables: dict[str, pd.DataFrame], set_aside: pd.DataFrame,
            report: dict, now: dt.datetime) -> dict[str, int]:
    """Write the source's parts, assemble and check the tables they feed, then put every file
    in place; return the rows the contract's soft rules set aside per table (they stay in the
    tables; `churn validate` quarantines them)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / IMPORTS).mkdir(exist_ok=True)
    except OSError as exc:
        raise output_error(exc, out_dir, "import into", "--out") from exc
    record = _read_record(out_dir)
    parts = {name: as_text(frame, TABLES[name]) for name, frame in tables.items()}
    for name in parts:
        refuse_foreign_table(out_dir, name, record, source)
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=out_dir / IMPORTS))
    try:
        assembled = {name: assemble(out_dir, name, source, part) for name, part in parts.items()}
        for name, frame in assembled.items():
            frame.to_csv(staging / f"{name}.csv", index=False, lineterminator="\n")
        quarantined = check_contract(out_dir, staging, set(assembled), now, source)
        report["set_aside_by_contract"] = quarantined
        _put_in_place(out_dir, source, parts, set_aside, report, staging, record)
    except OSError as exc:
        raise output_error(exc, out_dir, "import into", "--out") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return quarantined


def as_text(frame: pd.DataFrame, table) -> pd.DataFrame:
    """The rows as the CSV holds them, in the contract's column order (extra columns of the
    customers table after): times in UTC as YYYY-MM-DD HH:MM:SS, booleans true/false."""
    columns = table.column_names + [c for c in frame.columns if c not in table.column_names]
    out = pd.DataFrame(index=frame.index)
    for name in columns:
        values = frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime(TIME_FORMAT).astype(object).where(values.notna(), None)
        elif pd.api.types.is_bool_dtype(values) or str(values.dtype) == "boolean":
            values = values.map({True: "true", False: "false"}).astype(object).where(values.notna(), None)
        else:
            values = _numbers_as_text(values)
        out[name] = values.astype(object).where(values.notna(), None)
    return out.reset_index(drop=True)


def _numbers_as_text(values: pd.Series) -> pd.Series:
    """`_number_as_text` of each value (missing ones left as they are), without a Python call
    per row where that is not needed: text stays as it is, and each distinct float (by its
    bits: -0.0 is not 0.0) is written once; a table repeats its amounts."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    if values.dtype != np.float64:
        return values.map(_number_as_text, na_action="ignore")
    numbers = values.to_numpy()
    present = ~np.isnan(numbers)
    distinct, where = np.unique(numbers[present].view(np.int64), return_inverse=True)
    texts = np.array([_number_as_text(number) for number in distinct.view(np.float64)] + [None], dtype=object)
    spread = np.full(len(numbers), len(distinct))  # the None after the texts
    spread[present] = where
    return pd.Series(texts[spread], index=values.index, name=values.name, dtype=object)


def _number_as_text(value):
    """A number as the shortest text that reads back the same (to a millionth), whole numbers
    without a decimal point; any other value as it is."""
    if isinstance(value, (float, np.floating)):
        return repr(round(float(value), 6)).removesuffix(".0")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    return value


def customers_source(out_dir: Path) -> str | None:
    """The source whose import wrote the folder's customers table, if an import did."""
    sources = _read_record(out_dir).get("customers", {}).get("sources", [])
    return sources[0] if len(sources) == 1 else None


def _read_record(out_dir: Path) -> dict:
    path = out_dir / IMPORTS / RECORD
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable: every table file then counts as not ours, and is left alone


def refuse_foreign_table(out_dir: Path, table: str, record: dict, source: str) -> None:
    """Stop when the table's file in DIR was not written by an import (or was edited since),
    or when the customers table comes from another source."""
    entry = record.get(table, {})
    for suffix in (".csv", ".parquet"):
        path = out_dir / f"{table}{suffix}"
        if not path.exists():
            continue
        ours = suffix == ".csv" and path.is_file() and file_sha256(path) in {entry.get("sha256"), entry.get("replaced")}
        if not ours:
            raise OutputError(f"Refusing to replace {path}: `churn import` did not write it (or it was changed "
                              "since), and an import never overwrites a file it did not create. Move it out of "
                              f"{out_dir}, or import into another folder (--out).")
    others = [s for s in entry.get("sources", []) if s != source]
    if table == "customers" and others:
        raise OutputError(f"{out_dir / 'customers.csv'} already comes from {others[0]}; customers come from one "
                          f"system, and the rows of {source} are linked to them instead (pass --customers "
                          f"{out_dir}). To start the customers over, import into a new folder.")


def _part_path(out_dir: Path, source: str, table: str) -> Path:
    return out_dir / IMPORTS / source / f"{table}.csv"


def assemble(out_dir: Path, table: str, source: str, part: pd.DataFrame) -> pd.DataFrame:
    """The table from every source's part, the new part of `source` in place of its old one,
    sources in name order. Two sources giving one key is a DataError."""
    pieces = {source: part}
    for folder in sorted((out_dir / IMPORTS).iterdir()):
        path = folder / f"{table}.csv"
        if folder.is_dir() and folder.name != source and not folder.name.startswith(".") and path.is_file():
            pieces[folder.name] = pd.read_csv(path, dtype=str, keep_default_na=False).replace("", None)
    frame = pd.concat([pieces[name] for name in sorted(pieces)], ignore_index=True)
    key = TABLES[table].key
    if key and len(pieces) > 1:
        owners = pd.concat([pd.Series(name, index=pieces[name][key]) for name in sorted(pieces)])
        clash = owners[owners.index.duplicated(keep=False)]
        if len(clash):
            shown = ", ".join(f"{k!r} ({v})" for k, v in list(clash.items())[:4])
            raise DataError(f"{table}.{key} [one id from two sources]: {shown}. Two systems use the same ids; give "
                            "one of them a distinct prefix in its export, or import it into another folder.")
    return frame


def check_contract(out_dir: Path, staging: Path, written: set[str], now: dt.datetime, source: str) -> dict[str, int]:
    """The new tables (with the customers table they refer to) against the data contract:
    a hard rule broken stops the import before any file is in place."""
    files = {}
    for name in TABLES:
        if name in written:
            files[name] = staging / f"{name}.csv"
        elif name == "customers" and (out_dir / "customers.csv").is_file():
            files[name] = out_dir / "customers.csv"
    try:
        checked = validate_files(files, out_dir, now.replace(tzinfo=None), quarantine_dir=None)
    except DataError as exc:
        raise DataError(_as_import_failure(str(exc), source)) from None
    try:
        return {name: count for name, count in checked.quarantined.items() if name in written and count}
    finally:
        checked.close()


def write_account(out_dir: Path, source: str, set_aside: pd.DataFrame, report: dict) -> None:
    """The import's own account, DIR/imports/<source>/: set_aside.csv and report.json."""
    folder = out_dir / IMPORTS / source
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "set_aside.csv") as tmp:
            set_aside.to_csv(tmp, index=False, lineterminator="\n", date_format=TIME_FORMAT)
        atomic_write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", folder / "report.json")
    except OSError as exc:
        raise output_error(exc, folder, "write the import's account to", "--out") from exc


def previous_report(out_dir: Path, source: str) -> dict | None:
    """The report of the source's earlier import into the folder, if one can be read."""
    try:
        return json.loads((out_dir / IMPORTS / source / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _as_import_failure(message: str, source: str) -> str:
    """The contract's verdict on the converted tables, said of the import: its rows are
    numbered in the converted table (in time order), not in the export; the values shown
    find them there."""
    problems = [line.strip().removeprefix("- ") for line in message.splitlines() if line.strip().startswith("- ")]
    found = "; ".join(problems) or message
    return (f"{source}: the rows converted from the export break the data contract, so nothing was imported: {found}. "
            "Rows are numbered as in the converted table, in time order; find them in the export by the values shown, "
            "fix them there (or the mapping) and import again.")


def _put_in_place(out_dir: Path, source: str, parts: dict[str, pd.DataFrame], set_aside: pd.DataFrame,
                  report: dict, staging: Path, record: dict) -> None:
    """Parts, set-aside rows and report first, then the record of the new table files (with
    the hashes they replace, so a crash between the two leaves them recognisable), then the
    tables."""
    for name, part in parts.items():
        _part_path(out_dir, source, name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(_part_path(out_dir, source, name)) as tmp:
            part.to_csv(tmp, index=False, lineterminator="\n")
    write_account(out_dir, source, set_aside, report)
    for name in parts:
        target = out_dir / f"{name}.csv"
        entry = record.get(name, {})
        sources = sorted({*entry.get("sources", []), source})
        new, old = file_sha256(staging / f"{name}.csv"), file_sha256(target) if target.is_file() else None
        # an unchanged table keeps its record as it was: a rerun writes the same bytes
        record[name] = {"sha256": new, "replaced": entry.get("replaced") if old == new else old, "sources": sources}
    atomic_write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", out_dir / IMPORTS / RECORD)
    for name in parts:
        (staging / f"{name}.csv").chmod(0o644)
        os.replace(staging / f"{name}.csv", out_dir / f"{name}.csv")
