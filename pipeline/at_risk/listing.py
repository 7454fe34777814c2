"""The at-risk list's columns, order and files: a stable contract for CRM imports and Excel.

Columns, in this order (version AT_RISK_VERSION; documented in the README):
customer_id, as_of_date, churn_probability, risk_tier, predicted_clv, value_at_risk, rank,
top_reasons, segment, recommended_action, churn_model_version, clv_model_version, then the
configured passthrough columns from `customers`.

The files: at_risk.csv and at_risk.xlsx for people and CRM imports, safe to open in a
spreadsheet (a text cell that a spreadsheet would run as a formula is written as text), and
at_risk.parquet for machines, with the raw values. Every file has the same bytes on a rerun.
With `data.engine: spark` the list is also written by Spark as Parquet partitioned by date,
at_risk_by_date/as_of_date=YYYY-MM-DD/part-*.parquet (pipeline/engines/spark_scoring.py)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import ScoringConfig

AT_RISK_VERSION = "1.0"
AT_RISK_COLUMNS = [
    "customer_id", "as_of_date", "churn_probability", "risk_tier", "predicted_clv", "value_at_risk",
    "rank", "top_reasons", "segment", "recommended_action", "churn_model_version", "clv_model_version",
]
PROBABILITY_DECIMALS, MONEY_DECIMALS = 4, 2


def value_at_risk(churn_probability, predicted_clv) -> np.ndarray:
    """The value at risk of a customer: churn probability x predicted CLV, from the figures
    as the list shows them (probability to 4 decimals, CLV to the cent), to the cent, so that
    every row of the list multiplies out and the totals add up."""
    shown_probability = np.round(np.asarray(churn_probability, dtype=float), PROBABILITY_DECIMALS)
    shown_clv = np.round(np.asarray(predicted_clv, dtype=float), MONEY_DECIMALS)
    return np.round(shown_probability * shown_clv, MONEY_DECIMALS)


def build_at_risk_list(
    scored: pd.DataFrame, as_of: dt.date, churn_version: str, clv_version: str,
    passthrough: pd.DataFrame, cfg: ScoringConfig,
) -> pd.DataFrame:
    """`scored` holds customer_id, churn_probability, predicted_clv, value_at_risk,
    top_reasons, segment, recommended_action, risk_tier; return the list in contract order,
    sorted by value at risk."""
    out = scored.copy()
    out["as_of_date"] = as_of.isoformat()
    out["churn_probability"] = out["churn_probability"].round(PROBABILITY_DECIMALS)
    out["predicted_clv"] = out["predicted_clv"].round(MONEY_DECIMALS)
    out = out.sort_values(["value_at_risk", "churn_probability", "customer_id"],
                          ascending=[False, False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out["churn_model_version"], out["clv_model_version"] = churn_version, clv_version
    out = out[AT_RISK_COLUMNS].merge(passthrough, how="left", on="customer_id")
    if cfg.only_tiers:
        out = out[out["risk_tier"].isin(cfg.only_tiers)]
    if cfg.top_n:
        out = out.head(cfg.top_n)
    return out.reset_index(drop=True)


# A text cell starting with one of these is run as a formula by Excel or LibreOffice (OWASP,
# CSV injection): `=HYPERLINK(...)`, `+1`, `-cmd`, `@SUM(A1)`, or a tab or carriage return
# before any of them.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
TEXT_PREFIX = "'"
ID_COLUMNS = ("customer_id",)
PROBABILITY_COLUMNS = ("churn_probability",)
MONEY_COLUMNS = ("predicted_clv", "value_at_risk")
DATE_COLUMNS = ("as_of_date",)
EXCEL_MAX_ROWS = 1_048_576  # a worksheet's rows, the header included; a longer list continues on more sheets
SHEET_NAME = "at_risk"


def is_text_column(column: pd.Series) -> bool:
    return (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)
            or isinstance(column.dtype, pd.CategoricalDtype))


def _each_text(column: pd.Series, test) -> pd.Series:
    """`test` of the `.str` accessor on every text cell; False for any other cell."""
    try:
        found = test(column.astype(object).str)
    except AttributeError:  # not one string in it (numbers held as objects, say)
        return pd.Series(False, index=column.index)
    return found.fillna(False).astype(bool)


def formula_like(column: pd.Series) -> pd.Series:
    """True for each text cell that a spreadsheet would read as a formula."""
    return _each_text(column, lambda text: text.startswith(FORMULA_TRIGGERS))


def spreadsheet_safe(at_risk: pd.DataFrame) -> pd.DataFrame:
    """The list as the CSV writes it: a single quote before every formula-like text cell,
    which a spreadsheet then shows as text (OWASP's advice for CSV files), and a carriage
    return inside a cell written as a line feed, which the CSV writer quotes (a bare one
    would end the row in a spreadsheet, and could start a formula on the next). Number
    columns are left alone: a negative number stays a number."""
    safe = at_risk.copy()
    for name in safe.columns:
        if is_text_column(safe[name]):
            column = safe[name].astype(object)
            risky = formula_like(column)
            if risky.any():
                column = column.where(~risky, TEXT_PREFIX + column.astype(str))
            broken = _each_text(column, lambda text: text.contains("\r", regex=False))
            if broken.any():
                column = column.where(~broken, column.astype(str).str.replace("\r\n?", "\n", regex=True))
            if risky.any() or broken.any():
                safe[name] = column
    return safe


def write_at_risk_files(at_risk: pd.DataFrame, folder, cfg: ScoringConfig) -> dict[str, str]:
    """Write the list in each configured format into `folder` (the caller's staging folder);
    return {format: file name}. The workbook holds the first `scoring.xlsx_max_rows` rows
    (see `rows_written`): a person reads the top of the list, and a spreadsheet of a million
    rows is slow to write and to open."""
    folder = Path(folder)
    written = {}
    if "csv" in cfg.formats:
        spreadsheet_safe(at_risk).to_csv(
            folder / "at_risk.csv", index=False, sep=cfg.csv.delimiter, decimal=cfg.csv.decimal,
            encoding="utf-8-sig" if cfg.csv.excel_bom else "utf-8", lineterminator="\n",
        )
        written["csv"] = "at_risk.csv"
    if "parquet" in cfg.formats:
        at_risk.to_parquet(folder / "at_risk.parquet", index=False)  # raw values: it is for machines
        written["parquet"] = "at_risk.parquet"
    if "xlsx" in cfg.formats:
        write_workbook(at_risk.head(cfg.xlsx_max_rows), folder / "at_risk.xlsx", cfg.currency)
        written["xlsx"] = "at_risk.xlsx"
    return written


def rows_written(file_format: str, at_risk: pd.DataFrame, cfg: ScoringConfig) -> int:
    """How many rows of the list the file of `file_format` holds."""
    return min(len(at_risk), cfg.xlsx_max_rows) if file_format == "xlsx" else len(at_risk)


def write_workbook(at_risk: pd.DataFrame, path: Path, currency: str, rows_per_sheet: int = EXCEL_MAX_ROWS - 1) -> None:
    """at_risk.xlsx: typed cells (numbers, a real date, probabilities as percentages, money
    with two decimals and the currency, ids as text), a bold header row with a filter and
    frozen in place, and columns wide enough to read. Text cells are always text, never a
    formula or an error value; a formula-like one is also marked quote-prefixed, Excel's own
    leading apostrophe, so that it stays text when edited. A list longer than a worksheet
    holds continues on sheets "at_risk (2)", ... each with its header. The bytes depend only
    on the list: the document's dates and every zip entry's time are the as-of date."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    workbook = Workbook(write_only=True)
    stamp = _as_of_moment(at_risk)
    workbook.properties.creator = "churn-pipeline"
    workbook.properties.created = workbook.properties.modified = stamp
    columns = [_column_cells(at_risk[name], name, currency) for name in at_risk.columns]
    widths = [_column_width(name, at_risk[name], currency) for name in at_risk.columns]
    for sheet, start in enumerate(range(0, max(len(at_risk), 1), rows_per_sheet)):
        rows = range(start, min(start + rows_per_sheet, len(at_risk)))
        ws = workbook.create_sheet(SHEET_NAME if sheet == 0 else f"{SHEET_NAME} ({sheet + 1})")
        for number, width in enumerate(widths, 1):
            ws.column_dimensions[get_column_letter(number)].width = width
        ws.freeze_panes = "A2"
        last = get_column_letter(max(len(at_risk.columns), 1))
        ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
        header = []
        for name in at_risk.columns:
            cell = _text_cell(ws, str(name))
            cell.font = Font(bold=True)
            header.append(cell)
        ws.append(header)
        for row in rows:
            ws.append([column(ws, row) for column in columns])
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(workbook, archive).save()
    _repack_with_fixed_times(packed, path, stamp)


def _as_of_moment(at_risk: pd.DataFrame) -> dt.datetime:
    """Midnight of the list's as-of date (the zip format's first day for an empty list)."""
    if len(at_risk) and "as_of_date" in at_risk:
        return dt.datetime.combine(dt.date.fromisoformat(str(at_risk["as_of_date"].iloc[0])), dt.time())
    return dt.datetime(1980, 1, 1)


def _repack_with_fixed_times(packed: io.BytesIO, path: Path, stamp: dt.datetime) -> None:
    """Copy the workbook's zip entries in order, each stamped with `stamp` instead of the
    moment it was written."""
    with zipfile.ZipFile(packed) as source, path.open("wb") as handle, \
            zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=stamp.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, source.read(entry))


def _money_format(currency: str) -> str:
    return f'#,##0.00 "{currency}"'


def _column_cells(column: pd.Series, name: str, currency: str):
    """A function (worksheet, row) -> that row's cell of this column, typed once per column."""
    from openpyxl.cell import WriteOnlyCell

    def styled(fmt):
        def cell(ws, row):
            value = values[row]
            if value is None:
                return None
            made = WriteOnlyCell(ws, value)
            made.number_format = fmt
            return made
        return cell

    if name in DATE_COLUMNS and is_text_column(column):
        values = [None if pd.isna(v) else dt.date.fromisoformat(str(v)) for v in column]
        return styled("yyyy-mm-dd")
    if pd.api.types.is_datetime64_any_dtype(column):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        values = [None if pd.isna(v) else v.to_pydatetime() for v in column]
        return styled("yyyy-mm-dd hh:mm:ss")
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        values = column.astype(object).where(column.notna(), None).tolist()
        if name in PROBABILITY_COLUMNS:
            return styled("0.00%")
        if name in MONEY_COLUMNS:
            return styled(_money_format(currency))
        return lambda ws, row: values[row]
    values = _clean_text(column)
    # judged on the text as written: a control character the workbook drops must not hide a formula
    risky = set(np.flatnonzero(formula_like(pd.Series(values, dtype=object)).to_numpy()).tolist())
    as_id = name in ID_COLUMNS

    def text(ws, row):
        value = values[row]
        if value is None:
            return value
        made = _text_cell(ws, value)  # always a text cell: openpyxl would read '=...' as a formula
        if row in risky:
            made.quotePrefix = True
        if as_id:
            made.number_format = "@"
        return made
    return text


def _clean_text(column: pd.Series) -> list:
    """Text values, None where missing, without the control characters that a workbook's XML
    cannot hold (the CSV and Parquet keep them)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    text = column.astype(object)
    present = text.notna()
    text = text.where(~present, text.astype(str).str.replace(ILLEGAL_CHARACTERS_RE, "", regex=True))
    return text.where(present, None).tolist()


def _text_cell(ws, value: str):
    """A cell that holds `value` as text, whatever it starts with (openpyxl otherwise makes
    '=...' a formula and '#N/A' an error value)."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value)
    cell.data_type = "s"
    return cell


def _column_width(name: str, column: pd.Series, currency: str, sample: int = 1000) -> float:
    """Wide enough for the header and the first `sample` values as shown, within 8-60 characters."""
    head = column.head(sample)
    if name in MONEY_COLUMNS and len(head):
        shown = head.abs().max()
        longest = len(f"{shown:,.2f}") + len(currency) + 2
    elif name in PROBABILITY_COLUMNS or name in DATE_COLUMNS:
        longest = 10
    else:
        longest = max((len(str(value)) for value in head.astype(object) if not pd.isna(value)), default=0)
    return float(min(max(len(str(name)) + 2, longest + 1, 8), 60))
