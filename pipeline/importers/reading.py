"""Reading an export as it is: CSV in whatever encoding, delimiter and header spelling the tool
(or a spreadsheet that re-saved it) wrote, JSON documents with side-loaded records, and
newline-delimited JSON. Every value is read as text; pipeline/importers/values.py types it.

The result has one column per mapped field (named after the field, not the export's column),
plus `source_file` and `source_row` (the data row in the file, from 1) for messages and the
rows set aside."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from pathlib import Path

import pandas as pd

from pipeline.errors import DataError
from pipeline.importers.mapping import Reader, SourceMapping

DELIMITERS = (",", ";", "\t", "|")
FALLBACK_ENCODING = "cp1252"  # Excel on Windows re-saves a CSV in the system's code page
_CHECK_CHUNK = 1 << 24


def read_file(path: Path, mapping: SourceMapping, label: str | None = None) -> tuple[pd.DataFrame, str]:
    """The file's records in the mapping's fields, as text (every field a column, missing
    where the export lacks it), and the decimal mark its numbers are written with (by its
    delimiter; values.decimal_mark checks it against the numbers). `label` names the file in
    messages and the set-aside rows (default: its name). A .gz file is read as what it holds."""
    label = label or path.name
    _refuse_non_text(path, mapping)
    fmt = file_format(path, mapping.reader)
    try:
        if fmt == "csv":
            frame, decimal = _read_csv(path, mapping, label)
        else:
            frame, decimal = _select_fields(_read_json(path, mapping.reader, fmt), label, mapping), "."
    except UnicodeDecodeError as exc:
        tried = "UTF-8 or Windows-1252" if mapping.reader.encoding == "auto" else mapping.reader.encoding
        raise DataError(f"{mapping.source}: {path} is not text in {tried} (byte {exc.object[exc.start:exc.end]!r} "
                        f"at position {exc.start:,}). Export it again as UTF-8, or set reader.encoding in "
                        f"{mapping.path}.") from None
    for field in mapping.fields:
        if field not in frame:
            frame[field] = None  # an optional column the export does not have
    return frame, decimal


_ZIP, _GZIP, _UTF16 = b"PK\x03\x04", b"\x1f\x8b", (b"\xff\xfe", b"\xfe\xff")


def _refuse_non_text(path: Path, mapping: SourceMapping) -> None:
    if path.is_dir():
        raise DataError(f"{mapping.source}: {path} is a folder; pass the export files in it (e.g. {path}/*.csv).")
    if not path.is_file():
        raise DataError(f"{mapping.source}: the export file {path} does not exist.")
    with _open_bytes(path) as handle:
        head = handle.read(4)
    if not head:
        raise DataError(f"{mapping.source}: the export file {path} is empty (not even a header row).")
    if head.startswith(_ZIP):
        raise DataError(f"{mapping.source}: {path} is an Excel workbook or a zip archive, not the CSV or JSON export "
                        "the mapping reads. Export (or save) it as CSV, or unzip it first.")


def _open_bytes(path: Path):
    """The file's bytes; a gzip file's unpacked (BigQuery extracts are often compressed)."""
    with path.open("rb") as handle:
        packed = handle.read(2) == _GZIP
    return gzip.open(path, "rb") if packed else path.open("rb")


def _open_text(path: Path, encoding: str):
    return io.TextIOWrapper(_open_bytes(path), encoding=encoding, newline="")


def file_format(path: Path, reader: Reader) -> str:
    if reader.format != "auto":
        return reader.format
    suffix = path.suffix.lower()
    if suffix in (".ndjson", ".jsonl"):
        return "ndjson"
    return "json" if suffix == ".json" else "csv"


# --- CSV ---------------------------------------------------------------------------------


def encoding_of(path: Path, reader: Reader) -> str:
    """The file's text encoding: the mapping's; UTF-16 after its byte-order mark; UTF-8 when
    every byte decodes as UTF-8; else Windows-1252 (Excel's re-save on Windows)."""
    if reader.encoding != "auto":
        return reader.encoding
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open_bytes(path) as handle:
        if handle.read(2) in _UTF16:  # what Excel's "Unicode text" writes
            return "utf-16"
        handle.seek(0)
        try:
            while chunk := handle.read(_CHECK_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return FALLBACK_ENCODING
    return "utf-8-sig"


def _header_line(path: Path, encoding: str) -> str:
    with _open_text(path, encoding) as handle:
        return handle.readline()


def _known_columns(mapping: SourceMapping) -> set[str]:
    return {_folded(name) for spec in mapping.fields.values() for name in spec.column}


def _folded(name: str) -> str:
    """Header names compared as a person reads them: without surrounding blanks, a leftover
    byte-order mark or quotes, and regardless of case."""
    return name.strip().strip("\ufeff").strip('"').strip().lower()


def delimiter_of(header: str, mapping: SourceMapping) -> str:
    """The delimiter that splits the header into the most of the mapping's columns (ties go
    to the one that gives the most columns, then to the comma)."""
    if mapping.reader.delimiter != "auto":
        return mapping.reader.delimiter
    known = _known_columns(mapping)

    def fit(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([header], delimiter=delimiter), [])
        return sum(_folded(cell) in known for cell in cells), len(cells)

    return max(DELIMITERS, key=fit)


def decimal_of(delimiter: str, reader: Reader) -> str:
    if reader.decimal != "auto":
        return reader.decimal
    return "," if delimiter == ";" else "."


def _read_csv(path: Path, mapping: SourceMapping, label: str) -> tuple[pd.DataFrame, str]:
    encoding = encoding_of(path, mapping.reader)
    delimiter = delimiter_of(_header_line(path, encoding), mapping)
    header = next(csv.reader([_header_line(path, encoding)], delimiter=delimiter), [])
    chosen = choose_columns(header, label, mapping, delimiter)
    try:
        # a text stream decoded here, so that a .gz file is unpacked on the way
        frame = pd.read_csv(_open_text(path, encoding), sep=delimiter, dtype=str, keep_default_na=False,
                            na_filter=False, usecols=sorted(set(chosen.values())), quoting=csv.QUOTE_MINIMAL,
                            engine="c")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise DataError(f"{mapping.source}: cannot read {path} as a CSV file ({delimiter!r}-separated, "
                        f"{encoding}): {first_line}. Check that it is the tool's CSV export, unedited, or set "
                        f"reader.delimiter / reader.encoding in {mapping.path}.") from None
    return _as_fields(frame, chosen, label, mapping.reader.missing_values), decimal_of(delimiter, mapping.reader)


def choose_columns(header: list[str], label: str, mapping: SourceMapping, delimiter: str) -> dict[str, str]:
    """field -> the header cell that holds it: the first of the field's column names found;
    a required field found nowhere, or a column the mapping reads that the header holds
    twice (which of them is meant?), is a DataError listing them all."""
    by_name, seen = {}, {}
    for cell in header:
        by_name.setdefault(_folded(cell), cell)
        seen[_folded(cell)] = seen.get(_folded(cell), 0) + 1
    chosen, missing = {}, []
    for field, spec in mapping.fields.items():
        found = next((by_name[_folded(name)] for name in spec.column if _folded(name) in by_name), None)
        if found is not None:
            chosen[field] = found
        elif spec.required:
            missing.append(f"{field} (looked for {' or '.join(repr(c) for c in spec.column)})")
    twice = sorted({column for column in chosen.values() if seen[_folded(column)] > 1})
    if twice:
        raise DataError(f"{mapping.source}: {label} holds the column(s) {twice} more than once [column appears more "
                        "than once in the header]: it is not clear which one the mapping should read. Remove the "
                        "extra column and export again.")
    if missing:
        note = ""
        if len(header) == 1 and any(sep in header[0] for sep in DELIMITERS if sep != delimiter):
            note = " The header is one column holding separators: is the delimiter wrong (reader.delimiter)?"
        shown = header[:12] + (["..."] if len(header) > 12 else [])
        raise DataError(f"{mapping.source}: {label} lacks the column(s) the mapping {mapping.path} needs "
                        f"[missing column]: {'; '.join(missing)}. Its columns are {shown}.{note} Export again "
                        "with those columns, or edit the mapping's `column` names to the ones your export has.")
    return chosen


def _as_fields(frame: pd.DataFrame, chosen: dict[str, str], label: str, missing: list[str]) -> pd.DataFrame:
    """The chosen columns renamed to their fields, blanks trimmed, empty cells (and the
    mapping's `missing_values`) missing. Each distinct text is trimmed and checked once, as
    one Python object that its cells share: an export repeats most of its values (an order's
    fields on each of its line items, a customer's email on each order), and one object per
    cell took over three times the memory of the file."""
    out = pd.DataFrame({"source_file": label, "source_row": range(1, len(frame) + 1)}, index=frame.index)
    for field, column in chosen.items():
        codes, distinct = pd.factorize(frame[column], use_na_sentinel=False)
        values = pd.Series(distinct.astype(object), dtype=object)
        if values.map(type).eq(str).all():
            values = values.str.strip()
        values = values.where(~values.isin(["", *missing]), None)
        out[field] = pd.Series(values.to_numpy()[codes], index=frame.index, dtype=object)
    return out


# --- JSON --------------------------------------------------------------------------------


def _read_json(path: Path, reader: Reader, fmt: str) -> list[dict]:
    """The export's records, each with its side-loaded records joined in."""
    with _open_text(path, "utf-8-sig") as handle:
        text = handle.read()
    try:
        if fmt == "ndjson":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if fmt == "json" and exc.msg == "Extra data":  # several documents: one record per line
            return _read_json(path, reader, "ndjson")
        raise DataError(f"cannot read {path} as JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
                        "Check that it is the API's JSON (or newline-delimited JSON) unedited.") from None
    records = _records_in(document, reader, path)
    for join in reader.joins:
        _join_into(records, document, join, path)
    return records


def _records_in(document, reader: Reader, path: Path) -> list[dict]:
    if reader.records is None:
        if isinstance(document, list):
            return document
        return [document]
    if not isinstance(document, dict) or not isinstance(document.get(reader.records), list):
        keys = sorted(document) if isinstance(document, dict) else type(document).__name__
        raise DataError(f"{path.name} has no list `{reader.records}` of records (reader.records); its top level "
                        f"holds {keys}.")
    return document[reader.records]


def _join_into(records: list[dict], document: dict, join, path: Path) -> None:
    """Copy each side-loaded record under its alias into the records that point to it."""
    side = document.get(join.records) if isinstance(document, dict) else None
    if side is None:
        return  # not side-loaded in this file: the fields it gives are simply absent
    if not isinstance(side, list):
        raise DataError(f"{path.name}: `{join.records}` is not a list of records.")
    by_key = {str(item.get(join.key)): item for item in side if isinstance(item, dict)}
    for record in records:
        linked = by_key.get(str(_path_value(record, join.by)))
        if linked is not None:
            record[join.as_] = linked


def _path_value(record, dotted: str):
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _select_fields(records: list[dict], label: str, mapping: SourceMapping) -> pd.DataFrame:
    """Each field's value by its JSON path (a.b), as text; a required field that no record
    has is a missing column."""
    columns: dict[str, list] = {}
    missing = []
    for field, spec in mapping.fields.items():
        found = next((name for name in spec.column if any(_has_path(r, name) for r in records[:1000])), None)
        if found is None:
            found = next((name for name in spec.column if any(_has_path(r, name) for r in records)), None)
        if found is None:
            if spec.required and records:
                missing.append(f"{field} (looked for {' or '.join(repr(c) for c in spec.column)})")
            continue
        columns[field] = [_as_text(_path_value(r, found)) for r in records]
    if missing:
        keys = sorted(records[0]) if records and isinstance(records[0], dict) else []
        raise DataError(f"{mapping.source}: the records of {label} lack the field(s) the mapping {mapping.path} "
                        f"needs [missing column]: {'; '.join(missing)}. A record has {keys[:15]}. Export again with "
                        "those fields (and the side-loads the mapping joins), or edit the mapping's `column` paths.")
    out = pd.DataFrame({"source_file": label, "source_row": range(1, len(records) + 1)})
    for field, values in columns.items():
        out[field] = pd.Series(values, dtype=object)
    return out


def _has_path(record, dotted: str) -> bool:
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _as_text(value) -> str | None:
    """A JSON value as the text a CSV export would hold: numbers as written, booleans as
    true/false, nested values as JSON, null and empty text missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    text = str(value).strip()
    return text or None
