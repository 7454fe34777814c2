"""Read the input tables and validate them against the data contract.

Input files are opened by DuckDB (CSV is read as text first, so that every unparseable
value can be reported instead of failing on the first one). Every rule of the contract
is checked in one scan per table; all violations are reported at once. When no hard rule
is broken, rows breaking a soft rule are written to the quarantine folder, and the clean,
typed tables are exposed as DuckDB relations named after the contract's tables.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.contract import TABLES, Table
from pipeline.errors import DataError, EngineMemoryError
from pipeline.files import file_sha256, process_gone
from pipeline.validation import (
    Violation,
    ascending,
    casts_cannot_fail,
    check_rules,
    create_typed,
    missing_columns,
    quarantine_rows,
    render_violations,
    repeated_columns,
)

log = logging.getLogger(__name__)
DEFAULT_MEMORY_GB = 3.0  # DuckDB's own cap; it spills to disk beyond it
SMALLEST_ENGINE_GB = 1.0  # the least the engine is left while Python holds a large frame


@dataclass
class Tables:
    """The validated input tables: DuckDB relations named after the contract's tables
    (`customers`, `transactions`, ...). Feature stages query them with SQL."""

    con: duckdb.DuckDBPyConnection
    files: dict[str, Path]
    row_counts: dict[str, int]
    quarantined: dict[str, int]
    scratch: tempfile.TemporaryDirectory | None = None  # holds the engine's database file
    in_place: frozenset[str] = frozenset()  # views over (a copy of) their Parquet file, until `store`
    memory_limit_gb: float = DEFAULT_MEMORY_GB  # the engine's budget (data.engine_memory_gb)

    def close(self) -> None:
        """Close the engine and delete its scratch folder (also done when collected)."""
        self.con.close()
        if self.scratch is not None:
            self.scratch.cleanup()

    def store(self) -> None:
        """Write the tables read in place (`in_place`) into the engine's database file, for
        work that reads every table many times over, like a training stack (each stage per
        batch of customers): the engine scans its own storage faster than Parquet. A 12-cutoff
        stack of the 1M-customer world took 1.2-1.4x as long read in place; storing every
        table took 40 s there, less than that. One cutoff (scoring) gains less than it costs."""
        try:
            for name in sorted(self.in_place):
                self.con.execute(f"CREATE TABLE stored_{name} AS SELECT * FROM {name}")
                self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM stored_{name}")
        except duckdb.Error as exc:
            if "No space left on device" in str(exc) and self.scratch is not None:
                raise _disk_full(Path(self.scratch.name).parent, str(exc).strip().splitlines()[0]) from exc
            raise
        self.in_place = frozenset()

    @contextmanager
    def memory_shared_with(self, held_gb: float) -> Iterator[None]:
        """While Python holds `held_gb` of results (a training stack's feature frame), the
        engine keeps to its budget less that, and at least SMALLEST_ENGINE_GB: the engine
        and the frame it fills share `data.engine_memory_gb`, instead of the frame coming
        on top (1M customers x 12 cutoffs is a 2 GB frame). The engine spills more, so the
        work is slower; a larger budget buys the time back."""
        lowered = max(SMALLEST_ENGINE_GB, self.memory_limit_gb - held_gb)
        if lowered >= self.memory_limit_gb:
            yield
            return
        if held_gb >= 0.25:  # worth a line only where it slows the engine
            log.info("engine budget %.1f GB while the feature frame (%.1f GB) is held", lowered, held_gb)
        self.con.execute(f"SET memory_limit = '{lowered:.3f}GB'")
        try:
            yield
        finally:
            self.con.execute(f"SET memory_limit = '{self.memory_limit_gb:.3f}GB'")

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.files)

    def has(self, table: str) -> bool:
        return table in self.present

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        try:
            return self.con.execute(sql, params or {}).df()
        except duckdb.OutOfMemoryException as exc:
            limit = self.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            raise EngineMemoryError(
                f"The embedded engine ran out of its memory budget ({limit}) on a query over "
                f"{', '.join(f'{n} ({c:,} rows)' for n, c in self.row_counts.items())}. Raise "
                "data.engine_memory_gb in the config (this machine has room to spare if it has more "
                "memory than that), or build fewer customers per engine pass (features.batch_rows)."
            ) from exc

    def query_with(self, name: str, frame: pd.DataFrame, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run `sql` with `frame` visible as the table `name` for this query only (e.g. the
        cutoffs or the customer spine a stage computes for).

        The frame is copied into an engine table first: with its statistics the engine packs
        short text keys into integers for joins and grouping, which made stack queries on
        customer ids 1.8x as fast as scanning the pandas frame directly."""
        self.con.register(f"{name}_frame", frame)
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_frame")
            return self.query(sql, params)
        finally:
            self.con.unregister(f"{name}_frame")
            self.con.execute(f"DROP TABLE IF EXISTS {name}")

    def scalar(self, sql: str, params: dict | None = None):
        """The one value `sql` returns (the first column of its first row; None for no rows)."""
        rows = self.con.execute(sql, params or {}).fetchall()  # fetchone would leave the result open
        return rows[0][0] if rows else None

    def columns(self, table: str) -> list[str]:
        """The column names of a validated table, in order."""
        return self.con.sql(f"SELECT * FROM {table} LIMIT 0").columns

    def last_event_at(self) -> dt.datetime:
        """The latest event in any table: the end of the observed history."""
        parts = [
            f"SELECT max({TABLES[t].event_time}) AS last_at FROM {t}"
            for t in sorted(self.present)
            if TABLES[t].event_time
        ]
        return self.scalar(f"SELECT max(last_at) FROM ({' UNION ALL '.join(parts)})")

    def fingerprint(self) -> dict[str, dict]:
        """What the run read: per table its file, row counts, time range and content hash."""
        out = {}
        for name, path in sorted(self.files.items()):
            entry = {"file": path.name, "rows": self.row_counts[name], "quarantined": self.quarantined.get(name, 0),
                     "sha256": file_sha256(path)}
            if event_time := TABLES[name].event_time:
                first, last = self.con.execute(f"SELECT min({event_time}), max({event_time}) FROM {name}").fetchall()[0]
                entry["from"], entry["to"] = str(first), str(last)
            out[name] = entry
        return out


def find_table_files(data_dir: Path, fmt: str = "auto") -> dict[str, Path]:
    """Map each contract table to its file in data_dir (<table>.csv or <table>.parquet)."""
    suffixes = [".parquet", ".csv"] if fmt == "auto" else [f".{fmt}"]
    found = {}
    for name in TABLES:
        for suffix in suffixes:
            path = data_dir / f"{name}{suffix}"
            if path.is_file():
                found[name] = path
                break
    return found


def load_tables(
    data_dir: Path,
    run_started_at: dt.datetime,
    quarantine_dir: Path | None,
    fmt: str = "auto",
    memory_limit_gb: float = DEFAULT_MEMORY_GB,
    work_dir: Path | None = None,
) -> Tables:
    """Validate every input table; raise DataError listing all hard violations, otherwise
    quarantine soft-rule rows (written to quarantine_dir when given) and return the tables.

    The typed tables are stored once in a DuckDB database file in a scratch folder (under
    `work_dir`, or the system's temporary folder): stored columns are compressed and scanned
    in parallel, so the many feature and label queries that follow stay fast, and DuckDB
    keeps within `memory_limit_gb` by evicting to that file instead of growing. A Parquet
    file that already stores the contract's types is not stored again: the stages read a
    copy of it in the scratch folder (`_check_table`). Scanning Parquet is slower than the
    engine's own storage, but for one cutoff of every stage by less than writing every row
    costs (the 1M-customer demo world: validation 4-6x as fast, the stages 1.05-1.25x as
    long); a training stack stores them first (`Tables.store`)."""
    files = contract_files(data_dir, fmt)
    return validate_files(files, data_dir, run_started_at, quarantine_dir, memory_limit_gb, work_dir)


def contract_files(data_dir: Path, fmt: str = "auto") -> dict[str, Path]:
    """The contract's table files in data_dir (`find_table_files`); DataError when the folder
    or a required table is missing. Every engine starts from these."""
    if not data_dir.is_dir():
        raise DataError(
            f"Data directory {data_dir} does not exist. Generate demo data with `make data`, "
            "or pass --data DIR pointing at a folder of <table>.csv / <table>.parquet files."
        )
    files = find_table_files(data_dir, fmt)
    missing = [t.name for t in TABLES.values() if t.required and t.name not in files]
    if missing:
        raise DataError(
            f"Required table(s) {', '.join(missing)} not found in {data_dir} "
            f"(expected <table>.csv or <table>.parquet). Only customers and transactions are "
            "required; other tables are optional."
        )
    return files


def validate_files(files: dict[str, Path], data_dir: Path, run_started_at: dt.datetime, quarantine_dir: Path | None,
                   memory_limit_gb: float = DEFAULT_MEMORY_GB, work_dir: Path | None = None) -> Tables:
    """`load_tables` on the given files (table -> file, in the contract's order), whichever
    tables they are: `churn import` checks the tables it is about to publish this way."""
    con, scratch = open_engine(memory_limit_gb, work_dir)
    try:
        tables = _validate(con, scratch, files, data_dir, run_started_at, quarantine_dir)
        tables.memory_limit_gb = float(memory_limit_gb)
        return tables
    except duckdb.Error as exc:
        con.close()
        scratch.cleanup()
        raise _engine_failure(exc, files, work_dir) from exc
    except BaseException:
        con.close()  # whatever stopped validation, leave no engine file behind
        scratch.cleanup()
        raise


def _engine_failure(exc: duckdb.Error, files: dict[str, Path], work_dir: Path | None) -> DataError | OSError:
    """The engine failed while reading the files: name the file it was reading (a damaged
    Parquet file fails only when its pages are decompressed) or the full scratch disk."""
    text = str(exc)
    first_line = text.strip().splitlines()[0]
    if "No space left on device" in text or "disk is full" in text.lower():
        return _disk_full(work_dir or Path(tempfile.gettempdir()), first_line)
    damaged = next((path for path in files.values() if str(path) in text or path.name in text), None)
    if damaged is not None:
        return DataError(
            f"Table {damaged.stem}: cannot read {damaged}: {first_line}. The file is damaged or truncated (a "
            "Parquet file is checked page by page only as it is read); export it again."
        )
    return DataError(f"Reading the input tables failed in the engine: {first_line}. Check the files in "
                     f"{', '.join(sorted(str(p) for p in files.values()))}.")


def _disk_full(where: Path, first_line: str) -> DataError:
    return DataError(
        f"The disk under {where} (data.engine_dir, where the engine keeps the validated tables) is full: "
        f"{first_line}. Free space there, or point data.engine_dir at a disk with room for about twice the "
        "input files."
    )


def _validate(con, scratch, files: dict[str, Path], data_dir: Path, run_started_at: dt.datetime,
              quarantine_dir: Path | None) -> Tables:
    violations: list[Violation] = []
    row_counts = {}
    typed: set[str] = set()
    in_place: dict[str, bool] = {}  # typed as views over their files: -> soft-rule rows in set_aside_<name>?
    for name, path in files.items():  # customers first: the other tables' soft rule reads it
        table = TABLES[name]
        if repeated := repeated_columns(path):
            violations.append(Violation(name, ", ".join(repeated), "column appears more than once in the header",
                                        0, [f"{path.name} would silently keep one of them: rename or remove the "
                                            "duplicate and export again"]))
            continue
        try:
            violations += _check_table(con, table, path, typed, row_counts, run_started_at,
                                       Path(scratch.name), in_place)
        except duckdb.Error as exc:
            raise _unreadable(exc, table, path) from exc
    if violations:
        raise DataError(render_violations(violations, data_dir))
    quarantined = quarantine_rows(con, files, quarantine_dir, frozenset(n for n, listed in in_place.items() if listed))
    for name in files:
        kept = row_counts[name] - quarantined.get(name, 0)
        log.info("table %-16s %9s rows valid, %s quarantined", name, f"{kept:,}", quarantined.get(name, 0))
    return Tables(con, files, row_counts, quarantined, scratch, frozenset(in_place))


def _check_table(con, table: Table, path: Path, typed: set[str], row_counts: dict[str, int],
                 run_started_at: dt.datetime, scratch: Path, in_place: dict[str, bool]) -> list[Violation]:
    """Open one table's file, type it and check the contract's rules on it.

    A Parquet file that stores the contract's types (no cast can fail) is not written again:
    the typed table is a view over a copy of the file in the scratch folder (a copy, so that
    a file replaced or rewritten during the run cannot change what was validated; copying is
    about 1% of the cost of storing the table), and only its soft-rule rows are stored."""
    name = table.name
    _open_raw(con, table, path)
    raw_types = _raw_types(con, name)
    absent = [c.name for c in table.columns if c.required and c.name not in raw_types]
    if absent:
        return [missing_columns(table, path, absent, list(raw_types))]
    view = path.suffix == ".parquet" and casts_cannot_fail(table, raw_types)
    if view:
        copy = _snapshot(path, scratch)
        _open_raw(con, table, copy)
    listed = create_typed(con, table, raw_types, "customers" in typed, stored=not view)
    if view:
        in_place[name] = listed
    typed.add(name)
    row_counts[name] = con.execute(f"SELECT count(*) FROM typed_{name}").fetchall()[0][0]
    if row_counts[name] == 0 and table.required:
        return [Violation(name, "*", "empty table", 0, [f"{path} has no data rows"])]
    proven = view and table.key is not None and ascending(copy, table.key)
    return check_rules(con, table, raw_types, run_started_at, key_proven_unique=proven, read_every_column=view)


def _snapshot(path: Path, scratch: Path) -> Path:
    """A copy of the input file in the scratch folder, under the same name (the engine's
    messages about it name the file)."""
    copy = scratch / "inputs" / path.name
    copy.parent.mkdir(exist_ok=True)
    try:
        shutil.copyfile(path, copy)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise _disk_full(scratch.parent, str(exc)) from exc
        raise
    return copy


def _unreadable(exc: duckdb.Error, table: Table, path: Path) -> Exception:
    """A read that failed part-way through one file: a damaged file, named. A full disk or the
    engine's memory budget are not the file's fault and go on to the caller."""
    if isinstance(exc, duckdb.OutOfMemoryException) or "No space left on device" in str(exc):
        return exc
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return DataError(f"Table {table.name}: cannot read {path}: {first_line}. The file is damaged or truncated "
                     "(a Parquet file is checked page by page only as it is read); export it again.")


def open_engine(memory_limit_gb: float = DEFAULT_MEMORY_GB,
                work_dir: Path | None = None) -> tuple[duckdb.DuckDBPyConnection, tempfile.TemporaryDirectory]:
    """A DuckDB database in a fresh scratch folder, capped at `memory_limit_gb`; it spills
    into the same folder. The folder is removed when the Tables are closed or collected."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_engines(Path(work_dir or tempfile.gettempdir()))
    scratch = tempfile.TemporaryDirectory(prefix=f"churn-engine-{os.getpid()}-", dir=work_dir)
    con = duckdb.connect(str(Path(scratch.name) / "validated.duckdb"))
    con.execute(f"SET memory_limit = '{float(memory_limit_gb):.3f}GB'")  # a float: nothing else can reach SQL
    con.execute("SET temp_directory = $dir", {"dir": str(Path(scratch.name) / "spill")})
    return con, scratch


def remove_abandoned_engines(folder: Path) -> None:
    """Remove the scratch folders of runs that were killed (a SIGTERM or SIGKILL skips the
    clean-up): each is named after its process, and one whose process is gone is no one's.
    A scratch folder can be as large as the input tables."""
    for entry in folder.glob("churn-engine-*-*"):
        pid = entry.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and process_gone(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s, the engine folder of a run that was stopped", entry)


# --- reading -------------------------------------------------------------------------


def _open_raw(con: duckdb.DuckDBPyConnection, table: Table, path: Path) -> None:
    """A view over the file as it is, numbered by data row (from 1), with text cells for CSV."""
    if path.stat().st_size == 0:
        raise DataError(f"Table {table.name}: file {path} is empty (not even a header row).")
    try:
        if path.suffix == ".parquet":
            # Parquet knows each row's position: no ordered pass over the file is needed.
            con.register(f"file_{table.name}", con.read_parquet(str(path), file_row_number=True))
            numbered = "file_row_number + 1 AS source_row, * EXCLUDE (file_row_number)"
        else:
            con.register(f"file_{table.name}", con.read_csv(str(path), all_varchar=True))
            numbered = "row_number() OVER () AS source_row, *"
        con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{table.name} AS SELECT {numbered} FROM file_{table.name}")
        con.execute(f"SELECT count(*) FROM raw_{table.name}").fetchall()
    except duckdb.Error as exc:
        hint = (
            "Save it as UTF-8." if "unicode" in str(exc).lower() or "utf-8" in str(exc).lower()
            else "Check that it is a valid CSV (comma or semicolon separated, with a header row) "
            "or Parquet file."
        )
        first_line = str(exc).strip().splitlines()[0]
        raise DataError(f"Table {table.name}: cannot read {path}: {first_line}. {hint}") from exc


def _raw_types(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    """Column name -> the type the file stores it as (VARCHAR for every CSV column)."""
    rel = con.sql(f"SELECT * FROM raw_{name} LIMIT 0")
    return {c: str(t) for c, t in zip(rel.columns, rel.types, strict=True) if c != "source_row"}


