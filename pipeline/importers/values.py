"""Typing an export's text values by the mapping: times in any of the listed formats (with an
offset, in the source's time zone, or epoch numbers), numbers with either decimal mark, ids
a spreadsheet has not rounded, emails as they are compared, and value maps.

Every value that does not parse is reported, all at once, as one paragraph naming the file,
column, rule and example rows (`Problems.raise_if_any`): an import never guesses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.errors import DataError
from pipeline.importers.mapping import FieldSpec, SourceMapping

MAX_EXAMPLES = 3
# A long number that a spreadsheet showed in scientific notation and saved so: 5,01235E+12
# no longer says which of a hundred million ids it was.
ROUNDED_ID = re.compile(r"^[+-]?\d+([.,]\d+)?[eE][+-]?\d+$")
TRUE_WORDS = {"true", "yes", "1", "y", "t", "wahr", "ja", "oui", "vrai", "si", "sí"}
FALSE_WORDS = {"false", "no", "0", "n", "f", "falsch", "nein", "non", "faux"}
EPOCH_UNITS = {"epoch_s": "s", "epoch_ms": "ms", "epoch_us": "us"}


@dataclass
class Problems:
    """Values that broke a rule, gathered over a whole export before anything is written."""

    source: str
    found: list[str] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, bad: pd.Series, column: str, rule: str, raw: pd.Series | None = None) -> None:
        """Record the rows where `bad` holds; `raw` (default: the column) shows each one."""
        count = int(bad.sum())
        if not count:
            return
        shown = (raw if raw is not None else frame[column])[bad].head(MAX_EXAMPLES)
        where = frame.loc[shown.index]
        examples = "; ".join(f"{f} row {r}: {v!r}" for f, r, v in
                             zip(where["source_file"], where["source_row"], shown, strict=True))
        self.found.append(f"{column} [{rule}]: {count:,} row(s); e.g. {examples}")

    def raise_if_any(self, mapping: SourceMapping) -> None:
        if self.found:
            raise DataError(f"{self.source}: the export breaks the mapping {mapping.path}: " + " | ".join(self.found)
                            + ". Nothing was written. Fix the export, or edit the mapping (formats, value maps) "
                            "if your tool writes these values differently.")


def type_fields(frame: pd.DataFrame, mapping: SourceMapping, decimal: str, problems: Problems) -> pd.DataFrame:
    """The frame with every mapped field converted to its type (missing stays missing);
    `decimal` is the reader's mark (its guess by the delimiter, when the mapping says auto)."""
    out = frame.copy(deep=False)  # copy-on-write: replacing a column leaves `frame` as it was
    decimal = decimal_mark(frame, mapping, decimal)
    for name, spec in mapping.fields.items():
        if name in out:
            if spec.key is not None:
                out[name] = value_in_cell_json(out, name, spec, problems)
            out[name] = typed_column(out, name, spec, mapping.reader.timezone, decimal, problems)
    return out


def typed_column(frame: pd.DataFrame, name: str, spec: FieldSpec, timezone: str, decimal: str,
                 problems: Problems) -> pd.Series:
    values = frame[name]
    label = f"{spec.column[0]!r} (field {name})"
    present = values.notna()
    if spec.type == "text":
        return values
    if spec.type == "id":
        problems.add(frame, present & values.astype(str).str.match(ROUNDED_ID), label,
                     "an id shown in scientific notation, rounded by a spreadsheet: export it again, or keep the "
                     "column as text when the file is opened", values)
        return values
    if spec.type == "email":
        return normalised_email(values)
    if spec.type == "timestamp":
        parsed = parse_times(values, spec.formats, timezone)
        problems.add(frame, present & parsed.isna(), label, "not a time in the formats "
                     + " or ".join(repr(f) for f in spec.formats), values)
        return parsed
    if spec.type in EPOCH_UNITS:
        number = parse_numbers(values, ".")
        parsed = pd.to_datetime(number.round(), unit=EPOCH_UNITS[spec.type], errors="coerce")
        problems.add(frame, present & parsed.isna(), label, f"not a time in {spec.type} (whole "
                     f"{EPOCH_UNITS[spec.type]} since 1970-01-01 UTC)", values)
        return parsed
    if spec.type in ("number", "integer"):
        number = parse_numbers(values, decimal)
        problems.add(frame, present & number.isna(), label, f"not a number (decimal mark {decimal!r})", values)
        if spec.type == "integer":
            problems.add(frame, number.notna() & (number != number.round()), label, "not a whole number", values)
            return number.round().astype("Int64")
        return number
    if spec.type == "boolean":
        words = values.astype(str).str.lower()
        truth = pd.Series(pd.NA, index=values.index, dtype="boolean")
        truth[present & words.isin(TRUE_WORDS)] = True
        truth[present & words.isin(FALSE_WORDS)] = False
        problems.add(frame, present & truth.isna(), label, "not true/false", values)
        return truth
    raise AssertionError(spec.type)  # the mapping model allows no other type


def value_in_cell_json(frame: pd.DataFrame, name: str, spec: FieldSpec, problems: Problems) -> pd.Series:
    """The value under `spec.key` of the JSON object each cell holds, as text (missing where
    the object lacks the key); a cell that is not a JSON object is a problem."""
    def lookup(text):
        try:
            found = json.loads(text)
        except (TypeError, ValueError):
            return _NOT_AN_OBJECT
        if not isinstance(found, dict):
            return _NOT_AN_OBJECT
        value = found.get(spec.key)
        return None if value is None else (str(value).lower() if isinstance(value, bool) else str(value))

    values = frame[name].map(lookup, na_action="ignore")
    broken = values.map(lambda v: v is _NOT_AN_OBJECT)
    problems.add(frame, broken, f"{spec.column[0]!r} (field {name})", "not a JSON object (the mapping reads its key "
                 f"{spec.key!r})", frame[name])
    return values.where(~broken, None)


_NOT_AN_OBJECT = object()


def normalised_email(values: pd.Series) -> pd.Series:
    """Emails as they are compared: without surrounding blanks, lower-cased; a value that is
    not an address (no @, or a blank inside) is missing."""
    codes, text = distinct_texts(values)
    text = text.str.strip().str.lower()
    usable = text.str.fullmatch(r"[^@\s]+@[^@\s]+").fillna(False).astype(bool)
    return spread(text.where(usable).astype(object).where(usable, None), codes, values)


def distinct_texts(values: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """(codes, texts): each distinct value once, as text (missing included), and where each
    value is among them. An export repeats most of its values (a customer's email on every
    order, the same amounts), so a rule applied to the texts and `spread` back to the rows
    does its work once per distinct value, not once per row, and the rows share its results."""
    codes, distinct = pd.factorize(values.astype("string"), use_na_sentinel=False)
    return codes, pd.Series(distinct, dtype="string")


def spread(results: pd.Series, codes: np.ndarray, values: pd.Series) -> pd.Series:
    """The result for each of `values` from the results for their distinct texts."""
    return pd.Series(results.to_numpy()[codes], index=values.index, name=values.name, dtype=results.dtype)


def parse_times(values: pd.Series, formats: list[str], timezone: str) -> pd.Series:
    """Each value in the first format it fits, as a UTC moment without a zone (the contract's
    timestamps). A time without an offset is in `timezone`: a time that a daylight-saving
    switch skips is moved forward by the gap, and one that happens twice is taken as the
    first (summer-time) one."""
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    left = values.notna()
    for fmt in formats:
        if not left.any():
            break
        text = values[left].astype(str)
        if "%z" in fmt or "%Z" in fmt:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_localize(None)
        else:
            parsed = local_times_in_utc(pd.to_datetime(text, format=fmt, errors="coerce"), timezone)
        hit = parsed.notna()
        result[hit[hit].index] = parsed[hit].astype("datetime64[ns]")
        left &= result.isna()
    return result


def local_times_in_utc(local: pd.Series, timezone: str) -> pd.Series:
    """Wall-clock times in `timezone` as UTC moments without a zone. A time the clock skipped
    is read with the offset before the switch, which moves it forward by the gap (as Python's
    zoneinfo and java.time do: 02:30 and 02:10 stay 20 minutes apart); a time it showed twice
    is the first one."""
    zoned = local.dt.tz_localize(timezone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="NaT")
    utc = zoned.dt.tz_convert("UTC").dt.tz_localize(None)
    skipped = local.notna() & utc.isna()
    if skipped.any():
        before = local[skipped].dt.tz_localize(timezone, ambiguous=np.ones(int(skipped.sum()), dtype=bool),
                                               nonexistent="shift_backward")
        offset = before.dt.tz_localize(None) - before.dt.tz_convert("UTC").dt.tz_localize(None)
        utc[skipped] = local[skipped] - offset
    return utc


_CURRENCY = re.compile(r"^[A-Z]{3}|[A-Z]{3}$|[€$£¥]")
_GROUP_SPACES = re.compile(r"[\s\u00a0\u202f']")  # 1 234,50 and 1'234.50 group thousands too


def parse_numbers(values: pd.Series, decimal: str) -> pd.Series:
    """Numbers written with `decimal` as the decimal mark, the other mark (or a blank or an
    apostrophe) grouping thousands, and a currency sign or code around them allowed. A
    grouping mark must group three digits: `12.50` read with a decimal comma is not 1250
    but no number at all (missing), so a wrong decimal mark is caught instead of scaling
    every amount by a hundred."""
    codes, text = distinct_texts(values)
    grouping = "." if decimal == "," else ","
    text = text.str.replace(_CURRENCY, "", regex=True).str.strip()
    text = text.str.replace(_GROUP_SPACES, grouping, regex=True)
    g, d = re.escape(grouping), re.escape(decimal)
    shaped = text.str.fullmatch(rf"[+-]?(\d{{1,3}}({g}\d{{3}})+|\d+|(?=[{d}]\d))({d}\d+)?([eE][+-]?\d+)?")
    text = text.where(shaped.fillna(False).astype(bool)).str.replace(grouping, "", regex=False)
    if decimal == ",":
        text = text.str.replace(",", ".", regex=False)
    return spread(pd.to_numeric(text.astype(object).where(text.notna(), None), errors="coerce").astype(float),
                  codes, values)


def decimal_mark(frame: pd.DataFrame, mapping: SourceMapping, guess: str) -> str:
    """The decimal mark the export's numbers are written with, when the mapping leaves it to
    `auto`: the mark under which fewer of the number fields' values fail to parse (the
    delimiter's usual one, `guess`, on a tie such as 1.234)."""
    if mapping.reader.decimal != "auto":
        return mapping.reader.decimal
    columns = [name for name, spec in mapping.fields.items() if spec.type in ("number", "integer") and name in frame]
    if not columns:
        return guess

    def failures(mark: str) -> int:
        return sum(int((frame[c].notna() & parse_numbers(frame[c], mark).isna()).sum()) for c in columns)

    other = "." if guess == "," else ","
    return other if failures(other) < failures(guess) else guess


def mapped_values(frame: pd.DataFrame, name: str, mapping: SourceMapping, problems: Problems,
                  default=None) -> pd.Series:
    """The field's values through the mapping's value map (`values.<field>`), compared as
    written and then case-insensitively. A value the map does not name is a problem, unless
    the map has a `"*"` entry (what any other value means)."""
    table = mapping.values.get(name, {})
    folded = {str(k).strip().lower(): v for k, v in table.items()}
    values = frame[name]
    present = values.notna()
    keys = values.astype(str).str.strip().str.lower()
    result = keys.map(folded).astype(object)
    known = present & keys.isin(folded)
    if "*" in folded:
        result = result.where(known | ~present, folded["*"])
    else:
        problems.add(frame, present & ~known, f"{mapping.fields[name].column[0]!r} (field {name})",
                     f"a value the mapping's values.{name} does not list (it lists "
                     f"{sorted(map(str, table))[:8]})", values)
    return result.where(present, default)


def recoded_values(frame: pd.DataFrame, name: str, mapping: SourceMapping) -> pd.Series:
    """The field's values with those its value map lists replaced (compared case-
    insensitively), and any other value kept as written."""
    folded = {str(k).strip().lower(): v for k, v in mapping.values.get(name, {}).items()}
    values = frame[name]
    keys = values.astype(str).str.strip().str.lower()
    return values.where(~keys.isin(folded), keys.map(folded)).where(values.notna(), None)


def first_present(frame: pd.DataFrame, *fields: str) -> pd.Series:
    """Each row's first non-missing time among the fields the frame has."""
    result = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    for name in fields:
        if name in frame:
            result = result.fillna(frame[name])
    return result
