"""Read the input tables and validate them against the data contract.

Input files are opened by DuckDB (CSV is read as text first, so that every unparseable
value can be reported instead of failing on the first one). Every rule of the contract
is checked in one scan per table; all violations are reported at once. When no hard rule
is broken, rows breaking a soft rule are written to the quarantine folder, and the clean,
typed tables are exposed as DuckDB relations named after the contract's tables.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.contract import SQL_TYPES, TABLES, Column, Table
from pipeline.errors import DataError, EngineMemoryError
from pipeline.files import atomic_write_csv, file_sha256

log = logging.getLogger(__name__)
MAX_EXAMPLES = 5
DEFAULT_MEMORY_GB = 3.0  # DuckDB's own cap; it spills to disk beyond it


@dataclass
class Violation:
    table: str
    column: str
    rule: str
    count: int
    examples: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = f"{self.table}.{self.column} [{self.rule}]: {self.count:,} row(s)"
        return head + ("; e.g. " + "; ".join(self.examples) if self.examples else "")


@dataclass
class Tables:
    """The validated input tables: DuckDB relations named after the contract's tables
    (`customers`, `transactions`, ...). Feature stages query them with SQL."""

    con: duckdb.DuckDBPyConnection
    files: dict[str, Path]
    row_counts: dict[str, int]
    quarantined: dict[str, int]
    scratch: tempfile.TemporaryDirectory | None = None  # holds the engine's database file

    def close(self) -> None:
        """Close the engine and delete its scratch folder (also done when collected)."""
        self.con.close()
        if self.scratch is not None:
            self.scratch.cleanup()

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

    def last_event_at(self) -> dt.datetime:
        """The latest event in any table: the end of the observed history."""
        parts = [
            f"SELECT max({TABLES[t].event_time}) AS last_at FROM {t}"
            for t in sorted(self.present)
            if TABLES[t].event_time
        ]
        sql = f"SELECT max(last_at) FROM ({' UNION ALL '.join(parts)})"
        return self.con.execute(sql).fetchall()[0][0]

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
    keeps within `memory_limit_gb` by evicting to that file instead of growing."""
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
    con, scratch = open_engine(memory_limit_gb, work_dir)
    try:
        return _validate(con, scratch, files, data_dir, run_started_at, quarantine_dir)
    except BaseException:
        con.close()  # whatever stopped validation, leave no engine file behind
        scratch.cleanup()
        raise


def _validate(con, scratch, files: dict[str, Path], data_dir: Path, run_started_at: dt.datetime,
              quarantine_dir: Path | None) -> Tables:
    violations: list[Violation] = []
    row_counts = {}
    typed: set[str] = set()
    for name, path in files.items():  # customers first: the other tables' soft rule reads it
        table = TABLES[name]
        _open_raw(con, table, path)
        raw_types = _raw_types(con, name)
        absent = [c.name for c in table.columns if c.required and c.name not in raw_types]
        if absent:
            violations.append(_missing_columns(con, table, path, absent))
            continue
        _create_typed(con, table, raw_types, "customers" in typed)
        typed.add(name)
        row_counts[name] = con.execute(f"SELECT count(*) FROM typed_{name}").fetchall()[0][0]
        if row_counts[name] == 0 and table.required:
            violations.append(Violation(name, "*", "empty table", 0, [f"{path} has no data rows"]))
            continue
        violations += _check_rules(con, table, raw_types, run_started_at)
    if violations:
        raise DataError(_render(violations, data_dir))
    quarantined = _quarantine(con, files, quarantine_dir)
    for name in files:
        kept = row_counts[name] - quarantined.get(name, 0)
        log.info("table %-16s %9s rows valid, %s quarantined", name, f"{kept:,}", quarantined.get(name, 0))
    return Tables(con, files, row_counts, quarantined, scratch)


def open_engine(memory_limit_gb: float = DEFAULT_MEMORY_GB,
                work_dir: Path | None = None) -> tuple[duckdb.DuckDBPyConnection, tempfile.TemporaryDirectory]:
    """A DuckDB database in a fresh scratch folder, capped at `memory_limit_gb`; it spills
    into the same folder. The folder is removed when the Tables are closed or collected."""
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.TemporaryDirectory(prefix="churn-engine-", dir=work_dir)
    con = duckdb.connect(str(Path(scratch.name) / "validated.duckdb"))
    con.execute(f"SET memory_limit = '{float(memory_limit_gb):.3f}GB'")  # a float: nothing else can reach SQL
    con.execute("SET temp_directory = $dir", {"dir": str(Path(scratch.name) / "spill")})
    return con, scratch


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
        con.execute(f"CREATE TEMP VIEW raw_{table.name} AS SELECT {numbered} FROM file_{table.name}")
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


def _missing_columns(con, table: Table, path: Path, absent: list[str]) -> Violation:
    present = list(_raw_types(con, table.name))
    note = f"{path.name} has columns {present}"
    if len(present) == 1 and any(sep in present[0] for sep in ";,\t|"):
        note += " (one column holding separators: wrong delimiter?)"
    return Violation(table.name, ", ".join(absent), "missing column", 0, [note])


def _casts_safely(raw_type: str, sql_type: str) -> bool:
    """True when every value of raw_type converts to sql_type (a Parquet file that already
    has the contract's types): such columns cannot be unparseable and need no text checks."""
    if raw_type == sql_type:
        return True
    return raw_type in _LOSSLESS.get(sql_type, ()) or (sql_type == "DOUBLE" and raw_type.startswith("DECIMAL"))


_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
_LOSSLESS = {
    "BIGINT": _INTEGERS,
    "DOUBLE": (*_INTEGERS, "FLOAT", "UBIGINT", "HUGEINT"),
    "TIMESTAMP": ("TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "DATE"),
}


def _create_typed(con: duckdb.DuckDBPyConnection, table: Table, raw_types: dict[str, str],
                  customers_known: bool) -> None:
    """Store the table with every contract column cast to its type, once. Unparseable values
    become NULL here and are caught by comparing with the raw text; the soft rule each row
    breaks, if any, is stored beside it as `quarantine_reason`."""
    selects = ["source_row"]
    for col in table.columns:
        sql_type = SQL_TYPES[col.kind]
        if col.name not in raw_types:
            selects.append(f'CAST(NULL AS {sql_type}) AS "{col.name}"')
        elif raw_types[col.name] == sql_type:
            selects.append(f'"{col.name}"')
        else:
            selects.append(f'TRY_CAST("{col.name}" AS {sql_type}) AS "{col.name}"')
    if table.allow_extra_columns:
        contract = set(table.column_names)
        selects += [f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in sorted(set(raw_types) - contract)]
    typed = f"SELECT {', '.join(selects)} FROM raw_{table.name}"
    reason = _soft_rule_reasons(table, customers_known)
    if reason is not None:
        typed = f"SELECT *, {reason} AS quarantine_reason FROM ({typed})"
    con.execute(f"CREATE TABLE typed_{table.name} AS {typed}")


# --- rules -----------------------------------------------------------------------------


def _column_rules(col: Column, raw_type: str, now_sql: str) -> dict[str, str]:
    """SQL conditions that flag a broken rule on one row, keyed by rule name. `t` is the
    typed table; `r`, the raw file, is only needed where the cast could fail."""
    typed, raw = f't."{col.name}"', f'r."{col.name}"'
    rules = {}
    if _casts_safely(raw_type, SQL_TYPES[col.kind]):
        blank = f"nullif(trim({typed}), '') IS NULL" if col.kind == "string" else f"{typed} IS NULL"
    else:
        blank = f"nullif(trim(CAST({raw} AS VARCHAR)), '') IS NULL"
        rules[f"unparseable {col.kind}"] = f"NOT ({blank}) AND {typed} IS NULL"
        if col.kind == "integer":
            as_double = f"TRY_CAST({raw} AS DOUBLE)"
            rules["not a whole number"] = f"{as_double} IS NOT NULL AND {as_double} <> round({as_double})"
    if col.required:
        rules = {"missing value": blank} | rules
    if col.min_value is not None:
        rules[f"below minimum {col.min_value:g}"] = f"{typed} < {col.min_value}"
    if col.max_value is not None:
        rules[f"above maximum {col.max_value:g}"] = f"{typed} > {col.max_value}"
    if col.kind == "timestamp":
        rules["in the future"] = f"{typed} > {now_sql}"
    return {f"{col.name}|{rule}": cond for rule, cond in rules.items()}


def _check_rules(con, table: Table, raw_types: dict[str, str], run_started_at: dt.datetime) -> list[Violation]:
    now_sql = "CAST($now AS TIMESTAMP)"
    conditions: dict[str, str] = {}
    for col in table.columns:
        if col.name in raw_types:
            conditions |= _column_rules(col, raw_types[col.name], now_sql)
    for rule in table.order_rules:
        if {rule.earlier, rule.later} <= set(raw_types):
            conditions[f"{rule.later}|{rule.name}"] = f't."{rule.later}" < t."{rule.earlier}"'
    needs_raw = any('r."' in cond for cond in conditions.values())
    # The raw file is joined in only when some rule reads its text (CSV, or a Parquet
    # column stored with another type than the contract's); typed Parquet is checked in one scan.
    source = f"typed_{table.name} t" + (f" JOIN raw_{table.name} r USING (source_row)" if needs_raw else "")
    counts_sql = ", ".join(f"count(*) FILTER (WHERE {c})" for c in conditions.values())
    key = table.key
    if key:
        counts_sql += f', count(t."{key}") - count(DISTINCT t."{key}")'
    counts = con.execute(
        f"SELECT {counts_sql} FROM {source}", _params_used(counts_sql, now=run_started_at)
    ).fetchall()[0]
    violations = []
    for (rule_key, cond), count in zip(conditions.items(), counts, strict=False):
        if count:
            column, rule = rule_key.split("|")
            shown = f'r."{column}"' if needs_raw else f't."{column}"'
            examples = _examples(con, source, cond, column, shown, run_started_at)
            violations.append(Violation(table.name, column, rule, count, examples))
    if key and counts[-1]:
        dup = con.execute(
            f'SELECT "{key}", count(*) AS n, list(source_row ORDER BY source_row) AS rows '
            f'FROM typed_{table.name} GROUP BY 1 HAVING n > 1 ORDER BY min(source_row) LIMIT {MAX_EXAMPLES}'
        ).fetchall()
        examples = [f"{key}={k!r} on rows {rows[:5]}" for k, _, rows in dup]
        violations.append(Violation(table.name, key, "duplicate key", counts[-1], examples))
    return violations


def _examples(con, source: str, cond: str, column: str, shown: str, now: dt.datetime) -> list[str]:
    rows = con.execute(
        f"SELECT source_row, CAST({shown} AS VARCHAR) FROM {source} WHERE {cond} "
        f"ORDER BY source_row LIMIT {MAX_EXAMPLES}",
        _params_used(cond, now=now),
    ).fetchall()
    return [f"row {n}: {column}={value!r}" for n, value in rows]


def _params_used(sql: str, **params) -> dict:
    """DuckDB refuses parameters a statement does not reference."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


def _render(violations: list[Violation], data_dir: Path) -> str:
    lines = [f"Input data in {data_dir} breaks the data contract ({len(violations)} problem(s)); "
             "nothing was written:"]
    lines += [f"  - {v.describe()}" for v in violations]
    lines.append("Fix the rows above in the source files (rows are numbered from 1 after the header) "
                 "and rerun `churn validate`.")
    return "\n".join(lines)


# --- quarantine ------------------------------------------------------------------------


def _soft_rule_reasons(table: Table, customers_known: bool) -> str | None:
    """A SQL CASE naming the soft rule a row breaks, or None when the table has none."""
    whens = []
    if table.references_customers and customers_known:
        whens.append("WHEN customer_id NOT IN (SELECT customer_id FROM typed_customers) "
                     "THEN 'customer not in customers'")
    if table.quarantine_zero:
        whens.append(f"WHEN {table.quarantine_zero} = 0 THEN '{table.quarantine_zero} is zero'")
    return f"CASE {' '.join(whens)} END" if whens else None


def _quarantine(con, files: dict[str, Path], quarantine_dir: Path | None) -> dict[str, int]:
    """Expose each clean table as a view named after it; write the set-aside rows out."""
    counts = {}
    for name in files:
        stored = con.sql(f"SELECT * FROM typed_{name} LIMIT 0").columns
        columns = ", ".join(f'"{c}"' for c in stored if c not in ("source_row", "quarantine_reason"))
        if "quarantine_reason" not in stored:
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM typed_{name}")
            continue
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM typed_{name} WHERE quarantine_reason IS NULL")
        bad = con.execute(
            f"SELECT source_row, quarantine_reason, {columns} FROM typed_{name} "
            "WHERE quarantine_reason IS NOT NULL ORDER BY source_row"
        ).df()
        counts[name] = len(bad)
        if quarantine_dir is not None:
            target = quarantine_dir / f"{name}.csv"
            if len(bad):
                atomic_write_csv(bad, target)
                log.warning("table %s: %d row(s) set aside into %s", name, len(bad), target)
            elif target.exists():
                target.unlink()  # a stale file from an earlier run would mislead
    return counts
