"""Building blocks of the demo world's tables: the block-wise table writer, and vectorised
helpers that draw category codes and turn codes into columns (labels, ids, names, emails).

Everything here works on whole arrays (numpy draws, Arrow compute), never a Python object
per row: a world of a million customers has some 50 million rows.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.contract import Table

ROWS_PER_GROUP = 1_000_000
ARROW_TYPES = {"string": pa.string(), "timestamp": pa.timestamp("us"), "number": pa.float64(),
               "integer": pa.int64(), "boolean": pa.bool_()}


class TableSink:
    """Writes one contract table in blocks: Parquet row groups of ~ROWS_PER_GROUP rows, or
    CSV (timestamps in whole seconds). The file exists, with its header, even when empty."""

    def __init__(self, folder: Path, table: Table, fmt: str, extra: tuple[str, ...] = ()):
        fields = [pa.field(c.name, ARROW_TYPES[c.kind]) for c in table.columns]
        self.schema = pa.schema(fields + [pa.field(name, pa.string()) for name in extra])
        path = folder / f"{table.name}.{fmt}"
        if fmt == "csv":
            self.file_schema = pa.schema([
                f.with_type(pa.timestamp("s")) if pa.types.is_timestamp(f.type) else f
                for f in self.schema])
            self.writer = pacsv.CSVWriter(path, self.file_schema)
        else:
            self.file_schema = self.schema
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.pending.append(table.select(self.schema.names).cast(self.schema))
        self.pending_rows += len(table)
        self.rows += len(table)
        if self.pending_rows >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending).cast(self.file_schema))
        self.pending, self.pending_rows = [], 0

    def __enter__(self) -> TableSink:
        return self

    def __exit__(self, *exc) -> None:
        self._flush()
        self.writer.close()


# --- drawing codes ------------------------------------------------------------------------

# Shopping and browsing happen mostly in the evening.
HOUR_WEIGHTS = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.4, 1, 2, 3, 4, 4.5, 5, 5.5, 5, 4.5, 4.5, 5, 5.5,
                         6.5, 7.5, 8, 7, 5, 2.5])


def choice(rng: np.random.Generator, weights, size: int) -> np.ndarray:
    """Category codes drawn with the given (unnormalised) weights."""
    cumulative = np.cumsum(weights, dtype=np.float64)
    return np.searchsorted(cumulative / cumulative[-1], rng.random(size), side="right")


def choice_per_row(rng: np.random.Generator, probabilities: np.ndarray) -> np.ndarray:
    """One category code per row, each row with its own probabilities."""
    u = rng.random(len(probabilities))[:, None]
    return np.minimum((u >= np.cumsum(probabilities, axis=1)).sum(axis=1),
                      probabilities.shape[1] - 1)


def time_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    """Seconds into the day, evening-heavy (when people shop and browse)."""
    hour = choice(rng, HOUR_WEIGHTS, size)
    return hour * 3600 + rng.integers(0, 3600, size)


# --- columns from codes -------------------------------------------------------------------

# Names with umlauts, accents, commas and quotes, so that CSV round trips get exercised.
FIRST_NAMES = ("Jürgen", "Anna", "Zoë", "Lukas", "Marie", "Sören", "Chloé", "Liam", "Fatma",
               "Björn", "Emma", "José", "Noah", "Inès", "Mats", "Sophie", "Günther", "Léa")
LAST_NAMES = ("Müller", "Schmidt", 'O"Brien', "Dubois", "Jansen", "Gruber", "Fischer", "Weiß",
              "Martin", "Smith", "García", "Nowak", "de Vries", "Öztürk", "Keller", "D'Angelo",
              "Lefèvre", "Hoffmann")
EMAIL_DOMAINS = ("example.com", "mail.example.org", "post.example.net")
SURNAME_FIRST_SHARE = 0.15  # written "Müller, Jürgen"


def labels(vocabulary: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Code arrays as plain string columns, without a Python string per row."""
    return pa.array(vocabulary).take(pa.array(np.asarray(codes, dtype=np.int64)))


def prefixed_ids(prefix: str, numbers: np.ndarray, digits: int) -> pa.Array:
    """"C0000123"-style fixed-width identifiers, built by Arrow compute."""
    padded = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), digits, "0")
    return pc.binary_join_element_wise(prefix, padded, "")


def _ascii_handle(name: str) -> str:
    """A name as it appears in an email address: "Müller" -> "mueller", 'O"Brien' -> "obrien"."""
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        name = name.replace(umlaut, spelled).replace(umlaut.upper(), spelled.capitalize())
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


def names_and_emails(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array]:
    """Names ("Jürgen Müller", sometimes "Müller, Jürgen") and matching email addresses,
    made unique by the customer's number."""
    first = choice(rng, np.ones(len(FIRST_NAMES)), n)
    last = choice(rng, np.ones(len(LAST_NAMES)), n)
    first_name = labels(FIRST_NAMES, first)
    last_name = labels(LAST_NAMES, last)
    names = pc.if_else(rng.random(n) < SURNAME_FIRST_SHARE,
                       pc.binary_join_element_wise(last_name, first_name, ", "),
                       pc.binary_join_element_wise(first_name, last_name, " "))
    handles = tuple(_ascii_handle(x) for x in FIRST_NAMES), tuple(
        _ascii_handle(x) for x in LAST_NAMES)
    emails = pc.binary_join_element_wise(
        labels(handles[0], first), ".", labels(handles[1], last),
        pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), "@",
        labels(EMAIL_DOMAINS, choice(rng, np.ones(len(EMAIL_DOMAINS)), n)), "")
    return names, emails
