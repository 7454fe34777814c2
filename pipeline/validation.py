"""The data contract's rules, checked in the engine: a repeated or missing column, values
that do not parse, break a range or an order, or lie in the future; all violations of a
table found in one scan, rendered as one paragraph; soft-rule rows set aside to the
quarantine folder. pipeline/tables.py reads the files and runs these checks."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipeline.contract import SQL_TYPES, Column, Table
from pipeline.files import atomic_write_csv

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
        head = f"{self.table}.{self.column} [{self.rule}]" + (f": {self.count:,} row(s)" if self.count else "")
        return head + ("; e.g. " + "; ".join(self.examples) if self.examples else "")


def repeated_columns(path: Path) -> list[str]:
    """Column names that the file's header holds more than once (the engine would rename the
    second `amount` to `amount_1` and read on, and one of them would be silently ignored)."""
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(path).schema_arrow.names
        except (pa.ArrowException, OSError):
            return []  # not a readable Parquet file: reading it proper says so, naming the file
    else:
        names = _csv_header(path)
    # The engine matches names regardless of case and surrounding blanks: `amount` and
    # ` AMOUNT` are the same column to it, and the second would become `AMOUNT_1`.
    seen: dict[str, list[str]] = {}
    for name in names:
        seen.setdefault(name.strip().lower(), []).append(name.strip())
    return sorted(" / ".join(dict.fromkeys(spellings)) for spellings in seen.values() if len(spellings) > 1)


def _csv_header(path: Path) -> list[str]:
    """The header cells of a CSV file, split by the delimiter the engine detects."""
    import csv

    try:
        delimiter = duckdb.execute("SELECT Delimiter FROM sniff_csv($path)", {"path": str(path)}).fetchall()[0][0]
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle, delimiter=delimiter or ",", skipinitialspace=True), [])
    except (duckdb.Error, UnicodeDecodeError, OSError, csv.Error):
        return []  # unreadable here: reading the file proper reports why


def missing_columns(table: Table, path: Path, absent: list[str], present: list[str]) -> Violation:
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


def casts_cannot_fail(table: Table, raw_types: dict[str, str]) -> bool:
    """True when the file stores every contract column it has in the contract's type or one
    that converts without loss (typed Parquet, as the demo world writes): no value can be
    unparseable, and the typed table can be a view over the file instead of a copy of it."""
    return all(_casts_safely(raw_types[c.name], SQL_TYPES[c.kind]) for c in table.columns if c.name in raw_types)


def create_typed(con: duckdb.DuckDBPyConnection, table: Table, raw_types: dict[str, str],
                  customers_known: bool, stored: bool = True) -> bool:
    """The table with every contract column cast to its type: `typed_<name>`. Unparseable
    values become NULL here and are caught by comparing with the raw text.

    Stored (the default), it is written once, and the soft rule each row breaks, if any, is
    stored beside it as `quarantine_reason`. Not stored (only where `casts_cannot_fail`), it
    is a view over the file, and only the rows breaking a soft rule are written, to the table
    `set_aside_<name>` (source_row, quarantine_reason), and True is returned: `quarantine_rows`
    meets the two."""
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
    if not stored:
        con.execute(f"CREATE TEMP VIEW typed_{table.name} AS {typed}")
        if reason is not None:
            reasons = f"SELECT source_row, {reason} AS quarantine_reason FROM typed_{table.name} AS typed"
            con.execute(f"CREATE TABLE set_aside_{table.name} AS SELECT * FROM ({reasons}) AS soft "
                        "WHERE quarantine_reason IS NOT NULL")
        return reason is not None
    if reason is not None:
        typed = f"SELECT *, {reason} AS quarantine_reason FROM ({typed}) AS typed"
    con.execute(f"CREATE TABLE typed_{table.name} AS {typed}")
    return False


# --- rules -----------------------------------------------------------------------------


def _column_rules(col: Column, raw_type: str, now_sql: str) -> dict[str, str]:
    """SQL conditions that flag a broken rule on one row, keyed by rule name. `t` is the
    typed table; `r`, the raw file, is only needed where the cast could fail."""
    typed, raw = f't."{col.name}"', f'r."{col.name}"'
    rules = {}
    if _casts_safely(raw_type, SQL_TYPES[col.kind]):
        blank = _blank(typed) if col.kind == "string" else f"{typed} IS NULL"
    else:
        blank = _blank(f"CAST({raw} AS VARCHAR)")
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


def _blank(text: str) -> str:
    """SQL that is true where the text is missing or only blanks: `nullif(trim(x), '') IS NULL`,
    with trim run only where it may matter. A value that starts with a visible ASCII character
    ('!' to '~') is not blank, and nearly every value does: trimming them all was most of the
    cost of checking a string column (49.5M ids: 4 of 5.7 CPU seconds)."""
    return (f"CASE WHEN {text} IS NULL THEN true WHEN {text} >= '!' AND {text} < chr(127) THEN false "
            f"ELSE nullif(trim({text}), '') IS NULL END")


def check_rules(con, table: Table, raw_types: dict[str, str], run_started_at: dt.datetime,
                key_proven_unique: bool = False, read_every_column: bool = False) -> list[Violation]:
    """Every rule of the table, counted in one scan, with examples of each broken one. The
    duplicate-key count is left out when the caller has shown the key unique (`ascending`);
    `read_every_column` reads the columns no rule reads too (in the same scan), so that a
    damaged page of a file the typed table is a view over is reported here, naming the file."""
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
    aggregates = [f"count(*) FILTER (WHERE {c})" for c in conditions.values()]
    key = table.key if table.key and not key_proven_unique else None
    if key:
        aggregates.append(f'count(t."{key}") - count(DISTINCT t."{key}")')
    unread = [c for c in raw_types if c != key and not any(f't."{c}"' in cond for cond in conditions.values())]
    if read_every_column and unread:  # hash: nothing the engine could answer from the file's statistics
        aggregates.append("max(hash(" + ", ".join(f't."{c}"' for c in unread) + "))")
    counts_sql = ", ".join(aggregates)
    counts = con.execute(
        f"SELECT {counts_sql} FROM {source}", _params_used(counts_sql, now=run_started_at)
    ).fetchall()[0]
    duplicates = counts[len(conditions)] if key else 0
    violations = []
    for (rule_key, cond), count in zip(conditions.items(), counts, strict=False):
        if count:
            column, rule = rule_key.split("|")
            shown = f'r."{column}"' if needs_raw else f't."{column}"'
            examples = _examples(con, source, cond, column, shown, run_started_at)
            violations.append(Violation(table.name, column, rule, count, examples))
    if duplicates:
        dup = con.execute(
            f'SELECT "{key}", count(*) AS n, list(source_row ORDER BY source_row) AS rows '
            f'FROM typed_{table.name} GROUP BY 1 HAVING n > 1 ORDER BY min(source_row) LIMIT {MAX_EXAMPLES}'
        ).fetchall()
        examples = [f"{key}={k!r} on rows {rows[:5]}" for k, _, rows in dup]
        violations.append(Violation(table.name, key, "duplicate key", duplicates, examples))
    return violations


def ascending(path: Path, column: str) -> bool:
    """True when the values of `column` in the Parquet file rise strictly from row to row
    (NULLs aside), so that none repeats: the duplicate-key rule then needs no count of
    distinct values, by far its costliest rule (49.5M transaction ids: 18 CPU seconds, this
    pass over the one column 2.7). Exports usually come in key order; in any other order the
    distinct values are counted as before (the row groups' statistics tell most such files
    without a read)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        index = file.schema_arrow.get_field_index(column)
        kind = file.schema_arrow.field(index).type if index >= 0 else None
        if kind is None or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return False
        if not _row_groups_ascending(file, column):
            return False
        last = None
        for batch in file.iter_batches(batch_size=1 << 20, columns=[column]):
            values = pc.drop_null(batch.column(0))
            if not len(values):
                continue
            if last is not None and not values[0].as_py() > last:  # str order is UTF-8 byte order
                return False
            if len(values) > 1 and not pc.all(pc.greater(values.slice(1), values.slice(0, len(values) - 1))).as_py():
                return False
            last = values[-1].as_py()
    except (pa.ArrowException, OSError, TypeError, ValueError):
        return False  # unreadable here (the engine's own scan reports the file) or not comparable
    return True


def _row_groups_ascending(file, column: str) -> bool:
    """False when the statistics show a row group starting at or below the previous one's
    maximum (statistics may be missing or rounded: they can only rule a file out)."""
    schema = file.metadata.schema
    index = next((i for i in range(len(schema)) if schema.column(i).path == column), None)
    if index is None:
        return True
    previous_max = None
    for group in range(file.metadata.num_row_groups):
        stats = file.metadata.row_group(group).column(index).statistics
        if stats is None or not stats.has_min_max:
            return True  # no statistics: only the values can tell
        if previous_max is not None and stats.min <= previous_max:
            return False
        previous_max = stats.max
    return True


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


def render_violations(violations: list[Violation], data_dir: Path) -> str:
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
        # EXISTS with an equality, not NOT IN: Spark plans `NOT IN` inside a CASE as a nested
        # loop over both tables (hours at 100k customers), an equality as a hash join.
        whens.append("WHEN typed.customer_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM typed_customers known "
                     "WHERE known.customer_id = typed.customer_id) THEN 'customer not in customers'")
    if table.quarantine_zero:
        whens.append(f"WHEN {table.quarantine_zero} = 0 THEN '{table.quarantine_zero} is zero'")
    return f"CASE {' '.join(whens)} END" if whens else None


def quarantine_rows(con, files: dict[str, Path], quarantine_dir: Path | None,
                    set_aside: frozenset[str] = frozenset()) -> dict[str, int]:
    """Expose each clean table as a view named after it; write the set-aside rows out. The
    tables in `set_aside` were typed as views (`create_typed`, not stored): their soft-rule
    rows are listed in set_aside_<name>."""
    counts = {}
    for name in files:
        stored = con.sql(f"SELECT * FROM typed_{name} LIMIT 0").columns
        columns = ", ".join(f'"{c}"' for c in stored if c not in ("source_row", "quarantine_reason"))
        if name in set_aside:
            listed = con.execute(f"SELECT count(*) FROM set_aside_{name}").fetchall()[0][0]  # usually none
            bad = con.execute(
                f"SELECT source_row, quarantine_reason, {columns} FROM set_aside_{name} JOIN typed_{name} "
                "USING (source_row) ORDER BY source_row" + ("" if listed else " LIMIT 0")
            ).df()
            kept = f" WHERE source_row NOT IN (SELECT source_row FROM set_aside_{name})" if listed else ""
        elif "quarantine_reason" in stored:
            bad = con.execute(
                f"SELECT source_row, quarantine_reason, {columns} FROM typed_{name} "
                "WHERE quarantine_reason IS NOT NULL ORDER BY source_row"
            ).df()
            kept = " WHERE quarantine_reason IS NULL"
        else:
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM typed_{name}")
            continue
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT {columns} FROM typed_{name}{kept}")
        counts[name] = len(bad)
        if quarantine_dir is not None:
            target = quarantine_dir / f"{name}.csv"
            if len(bad):
                atomic_write_csv(bad, target)
                log.warning("table %s: %d row(s) set aside into %s", name, len(bad), target)
            elif target.exists():
                target.unlink()  # a stale file from an earlier run would mislead
    return counts
