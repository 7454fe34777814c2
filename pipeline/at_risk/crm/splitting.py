"""Import files within a CRM's limits: the rows, in order, in numbered CSV files
(`<stem>_001.csv`, `<stem>_002.csv`, ...), each with the header row, each holding no more
records and no more bytes than the import tool takes in one file.

Sizes are counted as the bytes each row takes in the file (UTF-8, no BOM, a line feed after
every row) before the file is written, so a file ends before the row that would overflow it.
The rows are serialised in one pass of the csv module (in C), not written row by row."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FileLimits:
    max_records: int  # data rows per file; the header row is not counted
    max_bytes: int  # bytes per file, the header row included


def csv_lines(cells: pd.DataFrame) -> list[bytes]:
    """The header and every row as a CSV line in UTF-8 (minimal quoting, a line feed after
    each), written by the csv module in one pass. A cell must not hold a line break (the
    caller writes text on one line): a line is a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(cells.columns)
    writer.writerows(zip(*(cells[column].tolist() for column in cells.columns), strict=True))
    lines = buffer.getvalue().encode("utf-8").split(b"\n")[:-1]
    if len(lines) != len(cells) + 1:
        raise ValueError("a cell of an import file holds a line break; write text on one line first")
    return [line + b"\n" for line in lines]


def write_split_csv(cells: pd.DataFrame, folder: Path, stem: str, limits: FileLimits) -> list[tuple[str, int]]:
    """Write `cells` (text only, headers as columns) into numbered files in `folder`; return
    (file name, rows) per file, in order. Each file takes rows while the next one fits both
    limits. An empty frame still gives one file, the header alone, so that a scheduled import
    always finds tonight's file."""
    header, *rows = csv_lines(cells)
    sizes = np.fromiter((len(row) for row in rows), dtype=np.int64, count=len(rows))
    if len(rows) and len(header) + sizes.max() > limits.max_bytes:
        raise ValueError(f"a row of {sizes.max():,} bytes cannot fit a file of at most {limits.max_bytes:,} bytes "
                         f"with its {len(header):,}-byte header")
    ends = np.cumsum(sizes)  # bytes of the rows up to and including each one
    written: list[tuple[str, int]] = []
    start = 0
    while start < len(rows) or not written:
        before = ends[start - 1] if start else 0
        fits = int(np.searchsorted(ends, before + limits.max_bytes - len(header), side="right"))
        stop = min(start + limits.max_records, fits)
        name = f"{stem}_{len(written) + 1:03d}.csv"
        (folder / name).write_bytes(b"".join([header, *rows[start:stop]]))
        written.append((name, stop - start))
        start = stop
    return written
