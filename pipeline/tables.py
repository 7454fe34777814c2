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
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.contract import SQL_TYPES, TABLES, Column, Table
from pipeline.errors import DataError
from pipeline.files import atomic_write_csv, file_sha256

log = logging.getLogger(__name__)
MAX_EXAMPLES = 5


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

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.files)

    def has(self, table: str) -> bool:
        return table in self.present

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or {}).df()

    def query_with(self, name: str, frame: pd.DataFrame, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run `sql` with `frame` visible as the table `name` for this query only (e.g. the
        cutoffs or the customer spine a stage computes for)."""
        self.con.register(name, frame)
        try:
            return self.query(sql, params)
        finally:
            self.con.unregister(name)

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
) -> Tables:
    """Validate every input table; raise DataError listing all hard violations, otherwise
    quarantine soft-rule rows (written to quarantine_dir when given) and return the tables."""
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
    con = duckdb.connect()
    violations: list[Violation] = []
    row_counts = {}
    for name, path in files.items():
        table = TABLES[name]
        _open_raw(con, table, path)
        absent = [c.name for c in table.columns if c.required and c.name not in _raw_columns(con, name)]
        if absent:
            violations.append(_missing_columns(con, table, path, absent))
            continue
        _create_typed(con, table, path)
        row_counts[name] = con.execute(f"SELECT count(*) FROM typed_{name}").fetchall()[0][0]
        if row_counts[name] == 0 and table.required:
            violations.append(Violation(name, "*", "empty table", 0, [f"{path} has no data rows"]))
            continue
        violations += _check_rules(con, table, run_started_at)
    if violations:
        raise DataError(_render(violations, data_dir))
    quarantined = _quarantine(con, files, quarantine_dir)
    for name in files:
        kept = row_counts[name] - quarantined.get(name, 0)
        log.info("table %-16s %9s rows valid, %s quarantined", name, f"{kept:,}", quarantined.get(name, 0))
    return Tables(con, files, row_counts, quarantined)


# --- reading -------------------------------------------------------------------------


def _open_raw(con: duckdb.DuckDBPyConnection, table: Table, path: Path) -> None:
    """A view over the file as it is, numbered by data row, with text cells for CSV."""
    if path.stat().st_size == 0:
        raise DataError(f"Table {table.name}: file {path} is empty (not even a header row).")
    try:
        if path.suffix == ".parquet":
            rel = con.read_parquet(str(path))
        else:
            rel = con.read_csv(str(path), all_varchar=True)
        con.register(f"file_{table.name}", rel)
        con.execute(
            f"CREATE TEMP VIEW raw_{table.name} AS "
            f"SELECT row_number() OVER () AS source_row, * FROM file_{table.name}"
        )
        con.execute(f"SELECT count(*) FROM raw_{table.name}").fetchall()
    except duckdb.Error as exc:
        hint = (
            "Save it as UTF-8." if "unicode" in str(exc).lower() or "utf-8" in str(exc).lower()
            else "Check that it is a valid CSV (comma or semicolon separated, with a header row) "
            "or Parquet file."
        )
        first_line = str(exc).strip().splitlines()[0]
        raise DataError(f"Table {table.name}: cannot read {path}: {first_line}. {hint}") from exc


def _raw_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[str]:
    return [c for c in con.sql(f"SELECT * FROM raw_{name} LIMIT 0").columns if c != "source_row"]


def _missing_columns(con, table: Table, path: Path, absent: list[str]) -> Violation:
    present = _raw_columns(con, table.name)
    note = f"{path.name} has columns {present}"
    if len(present) == 1 and any(sep in present[0] for sep in ";,\t|"):
        note += " (one column holding separators: wrong delimiter?)"
    return Violation(table.name, ", ".join(absent), "missing column", 0, [note])


def _create_typed(con: duckdb.DuckDBPyConnection, table: Table, path: Path) -> None:
    """Cast every contract column to its type; unparseable values become NULL here and are
    caught by comparing with the raw text. CSV is materialised (parsed once); Parquet stays
    a view so that large files are streamed, not loaded."""
    present = set(_raw_columns(con, table.name))
    selects = ["source_row"]
    for col in table.columns:
        if col.name in present:
            selects.append(f'TRY_CAST("{col.name}" AS {SQL_TYPES[col.kind]}) AS "{col.name}"')
        else:
            selects.append(f'CAST(NULL AS {SQL_TYPES[col.kind]}) AS "{col.name}"')
    if table.allow_extra_columns:
        contract = set(table.column_names)
        selects += [f'CAST("{c}" AS VARCHAR) AS "{c}"' for c in sorted(present - contract)]
    kind = "TABLE" if path.suffix == ".csv" else "VIEW"
    con.execute(f"CREATE TEMP {kind} typed_{table.name} AS SELECT {', '.join(selects)} FROM raw_{table.name}")


# --- rules -----------------------------------------------------------------------------


def _column_rules(col: Column, now_sql: str) -> dict[str, str]:
    """SQL conditions that flag a broken rule on one row, keyed by rule name."""
    typed, raw = f't."{col.name}"', f'r."{col.name}"'
    rules = {}
    if col.required:
        rules["missing value"] = f"nullif(trim(CAST({raw} AS VARCHAR)), '') IS NULL"
    blank = f"nullif(trim(CAST({raw} AS VARCHAR)), '') IS NULL"
    rules[f"unparseable {col.kind}"] = f"NOT ({blank}) AND {typed} IS NULL"
    if col.kind == "integer":
        rules["not a whole number"] = (
            f"TRY_CAST({raw} AS DOUBLE) IS NOT NULL AND TRY_CAST({raw} AS DOUBLE) <> round(TRY_CAST({raw} AS DOUBLE))"
        )
    if col.min_value is not None:
        rules[f"below minimum {col.min_value:g}"] = f"{typed} < {col.min_value}"
    if col.max_value is not None:
        rules[f"above maximum {col.max_value:g}"] = f"{typed} > {col.max_value}"
    if col.kind == "timestamp":
        rules["in the future"] = f"{typed} > {now_sql}"
    return {f"{col.name}|{rule}": cond for rule, cond in rules.items()}


def _check_rules(con, table: Table, run_started_at: dt.datetime) -> list[Violation]:
    present = set(_raw_columns(con, table.name))
    now_sql = "CAST($now AS TIMESTAMP)"
    conditions: dict[str, str] = {}
    for col in table.columns:
        if col.name in present:
            conditions |= _column_rules(col, now_sql)
    for rule in table.order_rules:
        if {rule.earlier, rule.later} <= present:
            conditions[f"{rule.later}|{rule.name}"] = f't."{rule.later}" < t."{rule.earlier}"'
    source = f"typed_{table.name} t JOIN raw_{table.name} r USING (source_row)"
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
            examples = _examples(con, source, cond, column, run_started_at)
            violations.append(Violation(table.name, column, rule, count, examples))
    if key and counts[-1]:
        dup = con.execute(
            f'SELECT "{key}", count(*) AS n, list(source_row ORDER BY source_row) AS rows '
            f'FROM typed_{table.name} GROUP BY 1 HAVING n > 1 ORDER BY min(source_row) LIMIT {MAX_EXAMPLES}'
        ).fetchall()
        examples = [f"{key}={k!r} on rows {rows[:5]}" for k, _, rows in dup]
        violations.append(Violation(table.name, key, "duplicate key", counts[-1], examples))
    return violations


def _examples(con, source: str, cond: str, column: str, now: dt.datetime) -> list[str]:
    rows = con.execute(
        f'SELECT source_row, CAST(r."{column}" AS VARCHAR) FROM {source} WHERE {cond} '
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


def _soft_rule_reasons(table: Table) -> str | None:
    """A SQL CASE naming the soft rule a row breaks, or None when the table has none."""
    whens = []
    if table.references_customers:
        whens.append("WHEN customer_id NOT IN (SELECT customer_id FROM typed_customers) "
                     "THEN 'customer not in customers'")
    if table.quarantine_zero:
        whens.append(f"WHEN {table.quarantine_zero} = 0 THEN '{table.quarantine_zero} is zero'")
    return f"CASE {' '.join(whens)} END" if whens else None


def _quarantine(con, files: dict[str, Path], quarantine_dir: Path | None) -> dict[str, int]:
    counts = {}
    for name in files:
        table = TABLES[name]
        reason = _soft_rule_reasons(table)
        columns = ", ".join(
            c for c in con.sql(f"SELECT * FROM typed_{name} LIMIT 0").columns if c != "source_row"
        )
        if reason is None:
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM typed_{name}")
            continue
        con.execute(
            f"CREATE TEMP VIEW flagged_{name} AS SELECT *, {reason} AS quarantine_reason FROM typed_{name}"
        )
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM flagged_{name} WHERE quarantine_reason IS NULL")
        bad = con.execute(
            f"SELECT source_row, quarantine_reason, {columns} FROM flagged_{name} "
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
