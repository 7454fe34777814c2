"""The Spark engine of `data.engine: spark`: the same validated tables as pipeline/tables.py,
with the same interface (`query`, `query_with`, `scalar`, `columns`, ...), computed by Spark.

One definition, two engines: the stages, the spine, the labels and the contract's rules are
written once in DuckDB's SQL; here each statement is transpiled to Spark SQL with sqlglot
(once per text), its `$name` parameters bound as Spark's named parameters (`:name`). The
contract checks are pipeline/validation.py's own functions, run through `_SparkSQL`, which
answers the few calls they make of a DuckDB connection. Results come back through Arrow and
are turned into pandas by DuckDB's own conversion, so that every frame has the dtypes the
DuckDB engine gives (Int64 where an integer column has blanks, str, datetime64[us], float64
for decimals), and code downstream cannot tell the engines apart.

Each load works in a session of its own (`newSession`: its own temporary views and SQL
settings, one Spark context per process): two loads in one process never see each other's
tables. The session reads timestamps as wall-clock times (TIMESTAMP_NTZ, DuckDB's TIMESTAMP)."""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from pipeline.config import DataConfig
from pipeline.contract import TABLES, Table
from pipeline.engines.spark_sql import spark_sql, spark_tree
from pipeline.errors import DataError, EngineMemoryError
from pipeline.files import file_sha256
from pipeline.tables import contract_files
from pipeline.validation import (
    Violation,
    check_rules,
    create_typed,
    missing_columns,
    quarantine_rows,
    render_violations,
    repeated_columns,
)

log = logging.getLogger(__name__)

# Settings of each load's session (on top of pipeline/engines/session.py's): timestamps
# without a zone, as DuckDB's TIMESTAMP and the contract's are.
# Nanosecond timestamps (pandas writes them) are read as numbers and turned into microseconds
# (`_read_parquet`), as DuckDB's TIMESTAMP_NS becomes its TIMESTAMP: Spark refuses them otherwise.
SESSION_SETTINGS = {"spark.sql.timestampType": "TIMESTAMP_NTZ", "spark.sql.legacy.parquet.nanosAsLong": "true"}


@dataclass
class SparkTables:
    """The validated input tables as Spark temporary views named after the contract's tables
    (`customers`, `transactions`, ...), in a session of their own. The same members as
    pipeline.tables.Tables, so stages, labels, training and scoring run unchanged on it."""

    session: object  # pyspark.sql.SparkSession
    files: dict[str, Path]
    row_counts: dict[str, int]
    quarantined: dict[str, int]
    stored: list = field(default_factory=list, repr=False)  # the persisted (cached) frames
    in_place: frozenset[str] = frozenset()  # as Tables.in_place: Spark caches every table it validates

    def close(self) -> None:
        """Release the cached tables and drop the views (the Spark context stays, for reuse)."""
        for frame in self.stored:
            frame.unpersist()
        self.stored.clear()
        for view in self.session.catalog.listTables():
            if view.isTemporary:
                self.session.catalog.dropTempView(view.name)

    @contextmanager
    def memory_shared_with(self, held_gb: float) -> Iterator[None]:
        """As Tables.memory_shared_with; here a no-op: the frame is held by the driver, and
        the executors' memory (data.spark settings) is not shared with it."""
        yield

    @property
    def present(self) -> frozenset[str]:
        return frozenset(self.files)

    def has(self, table: str) -> bool:
        return table in self.present

    def query(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        try:
            return to_pandas(self._run(sql, params))
        except Exception as exc:
            if "java.lang.OutOfMemoryError" not in str(exc):
                raise
            tables = ", ".join(f"{name} ({rows:,} rows)" for name, rows in self.row_counts.items())
            raise EngineMemoryError(
                f"Spark ran out of memory on a query over {tables}. Give it more in data.spark.options "
                "(spark.driver.memory on local[N], spark.executor.memory on a cluster), or build fewer customers "
                "per engine pass (features.batch_rows)."
            ) from exc

    def query_with(self, name: str, frame: pd.DataFrame, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run `sql` with `frame` visible as the table `name` for this query only."""
        self.session.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False)).createOrReplaceTempView(name)
        try:
            return self.query(sql, params)
        finally:
            self.session.catalog.dropTempView(name)

    def scalar(self, sql: str, params: dict | None = None):
        """The one value `sql` returns (the first column of its first row; None for no rows)."""
        rows = self._run(sql, params).take(1)
        return rows[0][0] if rows else None

    def columns(self, table: str) -> list[str]:
        """The column names of a validated table, in order."""
        return list(self.session.table(table).columns)

    def last_event_at(self) -> dt.datetime:
        """The latest event in any table: the end of the observed history."""
        parts = [f"SELECT max({TABLES[t].event_time}) AS last_at FROM {t}"
                 for t in sorted(self.present) if TABLES[t].event_time]
        return self.scalar(f"SELECT max(last_at) FROM ({' UNION ALL '.join(parts)})")

    def fingerprint(self) -> dict[str, dict]:
        """What the run read: per table its file, row counts, time range and content hash."""
        timed = [name for name in sorted(self.files) if TABLES[name].event_time]
        ranges = {}
        if timed:  # one Spark job for all tables
            parts = [f"SELECT '{name}' AS name, min({TABLES[name].event_time}) AS first, "
                     f"max({TABLES[name].event_time}) AS last FROM {name}" for name in timed]
            ranges = {name: (first, last) for name, first, last in self._run(" UNION ALL ".join(parts)).collect()}
        out = {}
        for name, path in sorted(self.files.items()):
            entry = {"file": path.name, "rows": self.row_counts[name], "quarantined": self.quarantined.get(name, 0),
                     "sha256": file_sha256(path)}
            if name in ranges:
                entry["from"], entry["to"] = (str(moment) for moment in ranges[name])
            out[name] = entry
        return out

    def _run(self, sql: str, params: dict | None = None):
        return self.session.sql(spark_sql(sql), args=params or None)


def _duckdb_text(value) -> str | None:
    """A value as DuckDB's CAST(... AS VARCHAR) writes it (a double as Python's repr,
    '200000000000.0' where Spark writes '2.0E11'; fractions of a second without trailing zeros)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return (text + f".{value.microsecond:06d}".rstrip("0")) if value.microsecond else text
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def to_pandas(frame) -> pd.DataFrame:
    """A Spark result as pandas, converted as the DuckDB engine converts its own results."""
    table = frame.toArrow()
    table = table.cast(pa.schema([_without_zone(f) for f in table.schema]))
    with duckdb.connect() as con:
        return con.from_arrow(table).df()


def _without_zone(column: pa.Field) -> pa.Field:
    """A zoned timestamp (Spark's TIMESTAMP_LTZ, in the session's UTC) as its UTC wall clock."""
    if pa.types.is_timestamp(column.type) and column.type.tz is not None:
        return column.with_type(pa.timestamp(column.type.unit))
    return column


class _SparkResult:
    def __init__(self, frame, as_text: frozenset[int] = frozenset()):
        self.frame, self.as_text = frame, as_text

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def fetchall(self) -> list[tuple]:
        return [tuple(_duckdb_text(v) if i in self.as_text else v for i, v in enumerate(row))
                for row in self.frame.collect()]

    def df(self) -> pd.DataFrame:
        return to_pandas(self.frame)


class _SparkSQL:
    """What pipeline/validation.py asks of a DuckDB connection (`execute`, `sql`), answered by
    Spark: statements are transpiled; `CREATE TABLE ... AS` becomes a cached view; values a
    query selects as text (`CAST(x AS VARCHAR)`, the examples of a violation) are written
    as DuckDB writes them, so that the paragraph of violations is the same."""

    def __init__(self, session, stored: list):
        self.session, self.stored = session, stored

    def execute(self, sql: str, params: dict | None = None) -> _SparkResult:
        tree = sqlglot.parse_one(sql, read="duckdb")
        if isinstance(tree, exp.Create):
            frame = self.session.sql(spark_tree(tree.expression).sql(dialect="spark"), args=params or None)
            if tree.kind == "TABLE":  # stored once, as DuckDB stores it: checks and stages read it many times
                frame = frame.persist()
                self.stored.append(frame)
            frame.createOrReplaceTempView(tree.this.name)
            return _SparkResult(frame)
        as_text = _texts_selected(tree)
        return _SparkResult(self.session.sql(spark_tree(tree).sql(dialect="spark"), args=params or None), as_text)

    def sql(self, sql: str) -> _SparkResult:
        return self.execute(sql)


def _texts_selected(tree: exp.Expression) -> frozenset[int]:
    """The positions of the select list's `CAST(x AS VARCHAR)`, each replaced by `x`: the
    value is written as text in Python, as DuckDB writes it (`_duckdb_text`)."""
    if not isinstance(tree, exp.Select):
        return frozenset()
    positions = set()
    for i, item in enumerate(tree.expressions):
        cast = item.this if isinstance(item, exp.Alias) else item
        if isinstance(cast, exp.Cast) and not isinstance(cast, exp.TryCast) and cast.to.is_type("varchar", "text"):
            cast.replace(cast.this)
            positions.add(i)
    return frozenset(positions)


# --- loading and validation --------------------------------------------------------------


def load_spark_tables(folder: Path, run_started_at: dt.datetime, quarantine_dir: Path | None,
                      data: DataConfig) -> SparkTables:
    """pipeline.tables.load_tables on Spark: find the contract's files in `folder`, check every
    rule, raise DataError listing all hard violations, otherwise quarantine soft-rule rows
    (written to quarantine_dir when given) and return the clean tables."""
    from pipeline.engines.session import spark_session

    files = contract_files(folder, data.format)
    session = spark_session(data.spark).newSession()
    for key, value in {**data.spark.options, **SESSION_SETTINGS}.items():
        if session.conf.isModifiable(key):  # the config's SQL settings, even where the session was started before
            session.conf.set(key, value)
    tables = SparkTables(session, files, {}, {})
    try:
        _validate(tables, folder, run_started_at, quarantine_dir)
    except BaseException:
        tables.close()
        raise
    return tables


def _validate(tables: SparkTables, folder: Path, run_started_at: dt.datetime, quarantine_dir: Path | None) -> None:
    """pipeline.tables._validate, step for step, with the rules of pipeline/validation.py."""
    con = _SparkSQL(tables.session, tables.stored)
    violations: list[Violation] = []
    typed: set[str] = set()
    for name, path in tables.files.items():  # customers first: the other tables' soft rule reads it
        table = TABLES[name]
        if repeated := repeated_columns(path):
            violations.append(Violation(name, ", ".join(repeated), "column appears more than once in the header",
                                        0, [f"{path.name} would silently keep one of them: rename or remove the "
                                            "duplicate and export again"]))
            continue
        try:
            violations += _check_table(con, table, path, typed, tables.row_counts, run_started_at)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - Spark's errors come from the JVM, of many kinds
            if not _is_spark_error(exc):
                raise
            raise _unreadable(exc, table, path) from exc
    if violations:
        raise DataError(render_violations(violations, folder))
    tables.quarantined.update(quarantine_rows(con, tables.files, quarantine_dir))
    for name in tables.files:
        kept = tables.row_counts[name] - tables.quarantined.get(name, 0)
        log.info("table %-16s %9s rows valid, %s quarantined", name, f"{kept:,}", tables.quarantined.get(name, 0))


def _check_table(con: _SparkSQL, table: Table, path: Path, typed: set[str], row_counts: dict[str, int],
                 run_started_at: dt.datetime) -> list[Violation]:
    """Open one table's file, type it and check the contract's rules on it."""
    name = table.name
    raw_types = _open_raw(con.session, table, path)
    absent = [c.name for c in table.columns if c.required and c.name not in raw_types]
    if absent:
        return [missing_columns(table, path, absent, list(raw_types))]
    create_typed(con, table, raw_types, "customers" in typed)
    typed.add(name)
    row_counts[name] = con.execute(f"SELECT count(*) FROM typed_{name}").fetchall()[0][0]
    if row_counts[name] == 0 and table.required:
        return [Violation(name, "*", "empty table", 0, [f"{path} has no data rows"])]
    return check_rules(con, table, raw_types, run_started_at)


def _is_spark_error(exc: BaseException) -> bool:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    return isinstance(exc, PySparkException | Py4JError)


def _unreadable(exc: BaseException, table: Table, path: Path) -> DataError:
    """A read that failed part-way through one file (Spark reads when a check first needs
    the rows): the file named, with what the reader said."""
    if path.suffix == ".parquet":
        hint = ("The file is damaged or truncated (a Parquet file is checked page by page only as it is read); "
                "export it again.")
    else:
        hint = CSV_HINT
    return DataError(f"Table {table.name}: cannot read {path}: {_spark_message(exc)}. {hint}")


def _spark_message(exc: BaseException) -> str:
    """The first line of what went wrong, from the innermost Java exception where there is
    one ('An error occurred while calling o123.collectToPython' says nothing)."""
    cause = getattr(exc, "java_exception", None)
    text = str(exc)
    while cause is not None:
        text = cause.toString()
        cause = cause.getCause()
    return (text.strip().splitlines() or [""])[0]


# --- reading -----------------------------------------------------------------------------

CSV_HINT = "Check that it is a valid CSV (comma or semicolon separated, with a header row) or Parquet file."


def _open_raw(session, table: Table, path: Path) -> dict[str, str]:
    """The view `raw_<table>`: the file as it is, numbered by data row (from 1), with text
    cells for CSV. Returns column name -> the type the file stores it as, in DuckDB's names
    (VARCHAR for every CSV column), which choose the rules exactly as for DuckDB."""
    if path.stat().st_size == 0:
        raise DataError(f"Table {table.name}: file {path} is empty (not even a header row).")
    if path.suffix == ".parquet":
        frame, raw_types = _read_parquet(session, path)
    else:
        frame = _read_csv(session, table, path)
        raw_types = dict.fromkeys(frame.columns[1:], "VARCHAR")
    frame.createOrReplaceTempView(f"raw_{table.name}")
    return raw_types


def _read_parquet(session, path: Path):
    """The Parquet file numbered by its rows' positions in it (from 1); nanosecond timestamps (pandas' own)
    are read as their microseconds, as DuckDB's TIMESTAMP_NS cast to TIMESTAMP is."""
    from pyspark.sql import functions as F  # noqa: N812

    schema = pq.read_schema(path)
    raw_types = {f.name: _duckdb_type(f.type) for f in schema}
    nanos = [f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"]
    frame = session.read.parquet(str(path))
    columns = [(F.col("_metadata.row_index") + 1).alias("source_row")]
    for name in frame.columns:
        column = F.col(f"`{name}`")
        if name in nanos:
            column = F.timestamp_micros(F.floor(column / 1000)).cast("timestamp_ntz")
        columns.append(column.alias(name))
    return frame.select(*columns), raw_types


def _duckdb_type(arrow: pa.DataType) -> str:
    """The type DuckDB gives a Parquet column of this Arrow type (what validation.py reads)."""
    if pa.types.is_timestamp(arrow):
        if arrow.tz is not None:
            return "TIMESTAMP WITH TIME ZONE"
        return {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}[arrow.unit]
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision},{arrow.scale})"
    names = {
        pa.string(): "VARCHAR", pa.large_string(): "VARCHAR", pa.string_view(): "VARCHAR",
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
        pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.date32(): "DATE",
    }
    return names.get(arrow, str(arrow).upper())


def _read_csv(session, table: Table, path: Path):
    """The CSV file as text cells, numbered in file order (from 1). The delimiter is the one
    DuckDB's sniffer finds (the DuckDB engine reads the same files with it); quoted cells may
    hold the delimiter, doubled quotes and line breaks."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # noqa: N812
    from pyspark.sql.types import StringType, StructField, StructType

    try:
        delimiter = duckdb.execute("SELECT Delimiter FROM sniff_csv($path)", {"path": str(path)}).fetchall()[0][0]
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle, delimiter=delimiter or ","), [])
    except (duckdb.Error, UnicodeDecodeError, csv.Error) as exc:
        first_line = str(exc).strip().splitlines()[0]
        hint = "Save it as UTF-8." if "unicode" in str(exc).lower() or "utf-8" in str(exc).lower() else CSV_HINT
        raise DataError(f"Table {table.name}: cannot read {path}: {first_line}. {hint}") from exc
    names = [name.strip() for name in header]
    text_cells = StructType([StructField(name, StringType()) for name in names])  # no pass to infer them
    frame = session.read.csv(str(path), schema=text_cells, header=True, enforceSchema=True, sep=delimiter or ",",
                             quote='"', escape='"', multiLine=True, encoding="UTF-8", mode="FAILFAST")
    positioned = frame.select(F.monotonically_increasing_id().alias("file_position"), "*")  # rises along the file
    numbered = F.row_number().over(Window.orderBy("file_position")).alias("source_row")
    return positioned.select(numbered, *(F.col(f"`{name}`") for name in names))
