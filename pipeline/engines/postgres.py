"""Read the contract's tables from a schema of a PostgreSQL database into Parquet files.

    data.source (postgresql://user@host:port/dbname) + data.source_schema
        -> one read-only REPEATABLE READ transaction: every table from the same snapshot, so a
           purchase committed between two tables cannot arrive without its customer
        -> each contract table (or view) found in the schema: COPY (SELECT ...) TO STDOUT as
           CSV, parsed by Arrow in blocks and written in row groups of about 100,000 rows to
           <table>.parquet in a scratch folder (never the whole table in memory)
        -> pipeline/tables.py validates that folder as any other: the same rules, quarantine
           and errors as for files

The password is never in the config: libpq reads PGPASSWORD or ~/.pgpass itself, as for psql.

A column stored in a type that converts to the contract's without loss travels typed
(timestamptz as its UTC wall time, date as midnight, numeric as a double, the integer types
as 64-bit integers); ±infinity timestamps, PostgreSQL's "open-ended", arrive empty. Any other
type travels as text and the contract's checks report what does not parse, as for a CSV file.
Rows keep the order the server returns them in (the table's stored order for a plain table),
which the contract's messages number from 1.
"""

from __future__ import annotations

import getpass
import io
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg import sql

from pipeline.contract import TABLES, Table
from pipeline.errors import DataError
from pipeline.files import process_gone
from pipeline.logs import mask_credentials

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10
ROWS_PER_GROUP = 100_000  # rows held in memory at once, and the Parquet row group size
CSV_BLOCK_BYTES = 4 << 20
SCRATCH_PREFIX = "churn-source"

# What a column of each contract kind is selected as, by the (base) type the database stores
# it in: the SQL around the column and the Arrow type its CSV text is parsed into. A type not
# listed travels as text.
_FINITE = "CASE WHEN isfinite({0}) THEN {1} END"
_TYPED: dict[str, dict[str, tuple[str, pa.DataType]]] = {
    "timestamp": {
        "timestamp": (_FINITE.format("{0}", "{0}"), pa.timestamp("us")),
        "timestamptz": (_FINITE.format("{0}", "{0} AT TIME ZONE 'UTC'"), pa.timestamp("us")),
        "date": (_FINITE.format("{0}", "{0}::timestamp"), pa.timestamp("us")),
    },
    "number": {name: ("{0}::float8", pa.float64())
               for name in ("int2", "int4", "int8", "float4", "float8", "numeric")},
    "integer": {**{name: ("{0}::int8", pa.int64()) for name in ("int2", "int4", "int8")},
                **{name: ("{0}::float8", pa.float64()) for name in ("float4", "float8", "numeric")}},
    "boolean": {"bool": ("{0}", pa.bool_())},
}
_AS_TEXT = ("{0}::text", pa.string())

# Every contract table's columns as the database stores them: base type of a domain, in the
# order of the table's definition.
_COLUMNS = """
SELECT c.relname, a.attname, coalesce(base.typname, t.typname)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type base ON base.oid = t.typbasetype AND t.typtype = 'd'
WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY c.relname, a.attnum
"""

# Each copy lives until the process ends (the validated tables' fingerprint reads its files);
# a process that was killed leaves its folder to the next run (remove_abandoned_copies).
_COPIES: list[tempfile.TemporaryDirectory] = []


def copy_tables_to_parquet(uri: str, schema: str, work_dir: Path | None) -> Path:
    """Copy every contract table found in `schema` of the database at `uri` into
    <table>.parquet files in a fresh scratch folder under `work_dir` (or the system's
    temporary folder); return the folder. Raise DataError, naming the server, database,
    schema and table but never a password, when that cannot be done."""
    where = describe_source(uri)
    root = Path(work_dir or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    remove_abandoned_copies(root)
    scratch = tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}-{os.getpid()}-", dir=root)
    try:
        with _connect(uri, where) as conn:
            columns = _find_tables(conn, schema, where)
            for name, stored in columns.items():
                _copy_table(conn, schema, TABLES[name], stored, Path(scratch.name) / f"{name}.parquet", where)
    except BaseException:
        scratch.cleanup()  # whatever stopped the copy, leave no half-written folder behind
        raise
    _COPIES.append(scratch)
    return Path(scratch.name)


def describe_source(uri: str) -> str:
    """`database shop on db.example.org:5432 as user churn`: where the tables come from, in
    words (no password: a URI's credentials are masked in every log line anyway)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(uri)
    except psycopg.ProgrammingError:
        params = {}
    user = params.get("user") or os.environ.get("PGUSER") or getpass.getuser()
    host = params.get("host") or os.environ.get("PGHOST") or "the local socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    return f"database {dbname} on {host}:{port} as user {user}"


def remove_abandoned_copies(folder: Path) -> None:
    """Remove the copies of runs that were killed (a SIGKILL skips the clean-up): each
    folder is named after its process, and one whose process is gone is no one's."""
    for entry in folder.glob(f"{SCRATCH_PREFIX}-*-*"):
        pid = entry.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and process_gone(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed %s, the database copy of a run that was stopped", entry)


# --- the database ----------------------------------------------------------------------


def _connect(uri: str, where: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(uri, connect_timeout=CONNECT_TIMEOUT_SECONDS, application_name="churn-pipeline",
                               client_encoding="utf8")
    except psycopg.Error as exc:
        raise DataError(_connection_failure(exc, where)) from None
    try:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        # The text forms the CSV parser reads; every digit of a double; the table's stored order.
        for setting in ("DateStyle = 'ISO, YMD'", "extra_float_digits = 3", "synchronize_seqscans = off"):
            conn.execute(f"SET LOCAL {setting}")
    except psycopg.Error as exc:
        conn.close()
        raise DataError(f"The PostgreSQL {where} (data.source) refused the session's settings: {_one_line(exc)}") \
            from None
    return conn


def _connection_failure(exc: psycopg.Error, where: str) -> str:
    reason = _one_line(exc)
    if "password" in reason:
        hint = ("Set the user's password in the environment as PGPASSWORD, or in a ~/.pgpass file (the config "
                "never holds it), and check the user name in data.source.")
    elif re.search(r'database "[^"]*" does not exist', reason):
        hint = "Check the database name at the end of data.source."
    elif re.search(r"refused|timeout|translate host|no route|unreachable|No such file", reason, re.IGNORECASE):
        hint = ("Check the host and port in data.source, that the server runs, and that it accepts connections "
                "from this machine.")
    else:
        hint = "Check data.source and that the server lets this user connect (its pg_hba.conf)."
    return f"Cannot connect to the PostgreSQL {where} (data.source): {reason} {hint}"


def _find_tables(conn: psycopg.Connection, schema: str, where: str) -> dict[str, list[tuple[str, str]]]:
    """Contract table -> its columns (name, stored type), in the contract's order; a missing
    schema or required table stops here, named."""
    try:
        if conn.execute("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = %s", [schema]).fetchone() is None:
            schemas = [row[0] for row in conn.execute(
                "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' "
                "AND nspname <> 'information_schema' ORDER BY 1")]
            listed = ", ".join(schemas[:20]) + (f" and {len(schemas) - 20} more" if len(schemas) > 20 else "")
            raise DataError(f"Schema {schema} (data.source_schema) does not exist in the PostgreSQL {where}; it "
                            f"has {listed or 'no schemas'}. Set data.source_schema to the schema that "
                            "holds the contract's tables.")
        found: dict[str, list[tuple[str, str]]] = {}
        for table, column, stored_type in conn.execute(_COLUMNS, [schema, list(TABLES)]):
            found.setdefault(table, []).append((column, stored_type))
    except psycopg.Error as exc:
        raise DataError(f"Reading the list of tables of schema {schema} in the PostgreSQL {where} failed: "
                        f"{_one_line(exc)}") from None
    missing = [t.name for t in TABLES.values() if t.required and t.name not in found]
    if missing:
        raise DataError(
            f"Required table(s) {', '.join(missing)} not found in schema {schema} of the PostgreSQL {where} "
            f"(data.source, data.source_schema); it has {', '.join(sorted(found)) or 'none of the contract tables'}. "
            "Only customers and transactions are required; other tables are optional. A view named after the "
            "table, with the contract's column names, works as well."
        )
    return {name: found[name] for name in TABLES if name in found}


def _select(schema: str, table: Table, stored: list[tuple[str, str]]) -> tuple[sql.Composed, pa.Schema]:
    """The SELECT that puts the table's columns into the types the CSV parser reads them as.
    Columns outside the contract are kept (as text) where the contract keeps them (customers),
    or where a required column is missing, so that the message lists what the table has."""
    contract = {c.name: c for c in table.columns}
    keep_all = table.allow_extra_columns or not {c.name for c in table.columns if c.required} <= dict(stored).keys()
    selects, fields = [], []
    for name, stored_type in stored:
        if name not in contract and not keep_all:
            continue
        kind = contract[name].kind if name in contract else "string"
        template, arrow_type = _TYPED.get(kind, {}).get(stored_type, _AS_TEXT)
        column = sql.Identifier(name)
        selects.append(sql.SQL("{} AS {}").format(sql.SQL(template).format(column), column))
        fields.append(pa.field(name, arrow_type))
    query = sql.SQL("COPY (SELECT {} FROM {}.{}) TO STDOUT (FORMAT csv)").format(
        sql.SQL(", ").join(selects), sql.Identifier(schema), sql.Identifier(table.name))
    return query, pa.schema(fields)


def _copy_table(conn: psycopg.Connection, schema: str, table: Table, stored: list[tuple[str, str]], path: Path,
                where: str) -> None:
    """Stream the table into `path`, one row group in memory at a time."""
    query, arrow_schema = _select(schema, table, stored)
    rows = 0
    try:
        # No column statistics: the copy is scanned once, whole, and strings' cost most to write.
        with conn.cursor().copy(query) as copy, pq.ParquetWriter(path, arrow_schema, write_statistics=False) as writer:
            batches = pa_csv.open_csv(io.BufferedReader(_CopyStream(copy), CSV_BLOCK_BYTES),
                                      read_options=_read_options(arrow_schema),
                                      parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                                      convert_options=_convert_options(arrow_schema))
            for group in _row_groups(batches, arrow_schema):
                writer.write_table(group, row_group_size=len(group))
                rows += len(group)
    except psycopg.Error as exc:
        hint = (" Grant the user SELECT on it." if isinstance(exc, psycopg.errors.InsufficientPrivilege) else "")
        raise DataError(f"Table {table.name}: reading {schema}.{table.name} from the PostgreSQL {where} failed: "
                        f"{_one_line(exc)}{hint}") from None
    except pa.ArrowInvalid as exc:
        raise DataError(f"Table {table.name}: {schema}.{table.name} in the PostgreSQL {where} holds a value that "
                        f"cannot be read: {_one_line(exc)} Correct it, or select the column as text in a view "
                        "so that the contract's checks name the rows.") from None
    except OSError as exc:
        raise DataError(f"Table {table.name}: cannot write its copy to {path} ({exc.strerror or exc}). Free space "
                        "there, or point data.engine_dir at a disk with room for the tables.") from None
    log.info("copied %s.%s: %s rows", schema, table.name, f"{rows:,}")


def _row_groups(batches: Iterator[pa.RecordBatch], arrow_schema: pa.Schema) -> Iterator[pa.Table]:
    """The parsed batches gathered into groups of at least ROWS_PER_GROUP rows (the last one
    smaller; none for an empty table, whose file then holds just the columns)."""
    pending: list[pa.RecordBatch] = []
    for batch in batches:
        pending.append(batch)
        if sum(map(len, pending)) >= ROWS_PER_GROUP:
            yield pa.Table.from_batches(pending, arrow_schema)
            pending = []
    if pending:
        yield pa.Table.from_batches(pending, arrow_schema)


def _read_options(arrow_schema: pa.Schema) -> pa_csv.ReadOptions:
    # The parser runs in this thread, which is the one that may read the connection.
    return pa_csv.ReadOptions(column_names=arrow_schema.names, block_size=CSV_BLOCK_BYTES, use_threads=False)


def _convert_options(arrow_schema: pa.Schema) -> pa_csv.ConvertOptions:
    # PostgreSQL's CSV writes NULL unquoted and empty, an empty text as "", booleans as t / f.
    return pa_csv.ConvertOptions(column_types=dict(zip(arrow_schema.names, arrow_schema.types, strict=True)),
                                 null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False,
                                 true_values=["t"], false_values=["f"])


class _CopyStream(io.RawIOBase):
    """The bytes of a running COPY ... TO STDOUT as a file the CSV parser reads."""

    def __init__(self, copy: psycopg.Copy) -> None:
        self._copy = copy
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        filled = 0
        while filled < len(buffer):
            if not self._pending:
                chunk = self._copy.read()
                if not chunk:
                    break
                self._pending = memoryview(chunk)
            n = min(len(buffer) - filled, len(self._pending))
            buffer[filled:filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled


def _one_line(exc: BaseException) -> str:
    """An error's message as one sentence on one line, credentials masked."""
    text = mask_credentials(" ".join(str(exc).split())) or type(exc).__name__
    text = text if len(text) <= 400 else text[:400] + " ..."  # a server quotes the whole offending value
    return text if text.endswith((".", "?", "!")) else text + "."
