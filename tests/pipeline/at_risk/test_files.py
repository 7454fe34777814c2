"""The list's files: safe to open in a spreadsheet (no text cell runs as a formula), typed in
the workbook, the same bytes on a rerun, and read back intact by LibreOffice."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from pipeline.at_risk.listing import (
    AT_RISK_COLUMNS,
    build_at_risk_list,
    spreadsheet_safe,
    value_at_risk,
    write_at_risk_files,
    write_workbook,
)
from pipeline.config import ScoringConfig

AS_OF = dt.date(2026, 1, 1)
NAMES = ["Jürgen Müller", "Zoë", "Chloé", 'O"Brien', "O'Brien"]
# Each would run as a formula (or start one) in Excel or LibreOffice if written as it is.
FORMULAS = ['=HYPERLINK("http://x","y")', "+1", "-cmd", "@SUM(A1)", "\tleading tab", "\r=1+1"]
ALL_NAMES = NAMES + FORMULAS
PASSTHROUGH = ["email", "name", "balance"]


def as_written(text: str) -> str:
    """A carriage return inside a cell is written as a line feed (in a CSV a bare one ends
    the row; a workbook's XML reads it back as a line feed)."""
    return text.replace("\r", "\n")


def at_risk_list() -> pd.DataFrame:
    """A list built by the real builder: accented and formula-like names, an id with
    leading zeros and one starting with a minus, a formula-like reason, and a number
    column with negative values."""
    n = len(ALL_NAMES)
    probability = np.linspace(0.95, 0.05, n)
    clv = np.linspace(1000.0, 10.0, n)
    ids = [f"{i:05d}" for i in range(1, n)] + ["-7"]
    scored = pd.DataFrame({
        "customer_id": ids, "churn_probability": probability, "predicted_clv": clv,
        "value_at_risk": value_at_risk(probability, clv),
        "risk_tier": ["high"] * 4 + ["medium"] * 4 + ["low"] * (n - 8),
        "top_reasons": ["no purchase for 94 days (usually every 21)", "=1+1"] + [""] * (n - 2),
        "segment": ["loyal"] * n, "recommended_action": ["win-back offer"] * n,
    })
    passthrough = pd.DataFrame({
        "customer_id": ids, "email": [f"c{i}@example.org" for i in range(n)], "name": ALL_NAMES,
        "balance": [-12.5 * (i % 3) + i for i in range(n)],
    })
    return build_at_risk_list(scored, AS_OF, "3", "4", passthrough, ScoringConfig())


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("at_risk")
    listed = at_risk_list()
    assert write_at_risk_files(listed, folder, ScoringConfig()) == {
        "csv": "at_risk.csv", "parquet": "at_risk.parquet", "xlsx": "at_risk.xlsx"}
    return folder, listed


def by_name(rows: list[dict], name_of) -> dict:
    return {name_of(row): row for row in rows}


def test_a_formula_like_text_cell_is_quoted_in_the_csv_and_numbers_stay_numbers(written):
    folder, listed = written
    with (folder / "at_risk.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == AT_RISK_COLUMNS + PASSTHROUGH
    assert len(rows) == len(listed)
    names = [row["name"] for row in rows]
    for name in NAMES:
        assert name in names
    for formula in FORMULAS:
        assert "'" + as_written(formula) in names, formula
    assert not [name for name in names if name.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert sorted(row["customer_id"] for row in rows)[0] == "'-7"  # ids are text too
    assert "'=1+1" in [row["top_reasons"] for row in rows]
    balances = [float(row["balance"]) for row in rows]  # not quoted: a negative number is a number
    assert min(balances) < 0 and sorted(balances) == sorted(listed["balance"])
    assert all(float(row["churn_probability"]) >= 0 for row in rows)


def test_the_parquet_keeps_the_raw_values(written):
    folder, listed = written
    back = pd.read_parquet(folder / "at_risk.parquet")
    pd.testing.assert_frame_equal(back, listed)
    assert set(back["name"]) == set(ALL_NAMES)


def test_the_workbook_holds_typed_cells_text_that_stays_text_and_a_filtered_frozen_header(written):
    folder, listed = written
    sheet = openpyxl.load_workbook(folder / "at_risk.xlsx").active
    assert sheet.title == "at_risk" and sheet.freeze_panes == "A2"
    header = [cell.value for cell in sheet[1]]
    assert header == AT_RISK_COLUMNS + PASSTHROUGH and all(cell.font.b for cell in sheet[1])
    assert sheet.auto_filter.ref == f"A1:O{len(listed) + 1}"
    widths = [sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width for i in range(1, len(header) + 1)]
    assert all(8 <= width <= 60 for width in widths)
    assert widths[header.index("top_reasons")] > widths[header.index("rank")]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]
    first = rows[0]
    assert first["customer_id"].value == "00001" and first["customer_id"].data_type == "s"
    assert first["customer_id"].number_format == "@"
    assert first["as_of_date"].value == dt.datetime(2026, 1, 1) and first["as_of_date"].is_date
    assert first["as_of_date"].number_format == "yyyy-mm-dd"
    assert first["churn_probability"].value == pytest.approx(0.95) and first["churn_probability"].number_format == "0.00%"
    for money in ("predicted_clv", "value_at_risk"):
        assert first[money].data_type == "n" and first[money].number_format == '#,##0.00 "EUR"'
    assert first["rank"].value == 1 and first["churn_model_version"].value == "3"
    names = by_name(rows, lambda row: row["name"].value)
    assert set(names) == {as_written(name) for name in ALL_NAMES}  # raw values: the workbook marks them as text
    for name in ALL_NAMES:
        cell = names[as_written(name)]["name"]
        assert cell.data_type == "s", name
        assert cell.quotePrefix == (name in FORMULAS), name
    reason = rows[1]["top_reasons"]
    assert (reason.value, reason.data_type, reason.quotePrefix) == ("=1+1", "s", True)
    balances = [row["balance"] for row in rows]
    assert all(cell.data_type == "n" for cell in balances) and min(cell.value for cell in balances) < 0


def test_rewriting_the_workbook_gives_the_same_bytes_stamped_with_the_as_of_date(written, tmp_path):
    folder, listed = written
    write_at_risk_files(listed, tmp_path, ScoringConfig(formats=["xlsx"]))
    assert (tmp_path / "at_risk.xlsx").read_bytes() == (folder / "at_risk.xlsx").read_bytes()
    with zipfile.ZipFile(folder / "at_risk.xlsx") as archive:
        assert {entry.date_time for entry in archive.infolist()} == {(2026, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    assert core.count("2026-01-01T00:00:00Z") == 2  # created and modified: the as-of date, not the clock


def test_a_list_longer_than_a_sheet_continues_on_more_sheets(tmp_path):
    listed = at_risk_list()
    write_workbook(listed, tmp_path / "at_risk.xlsx", "CHF", rows_per_sheet=4)
    book = openpyxl.load_workbook(tmp_path / "at_risk.xlsx")
    assert book.sheetnames == ["at_risk", "at_risk (2)", "at_risk (3)"]
    ids = []
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows(values_only=True))
        assert list(rows[0]) == list(listed.columns) and sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:O{len(rows)}"
        ids += [row[0] for row in rows[1:]]
    assert ids == listed["customer_id"].tolist()
    assert book.worksheets[0]["E2"].number_format == '#,##0.00 "CHF"'


def test_only_the_configured_formats_are_written(tmp_path):
    assert write_at_risk_files(at_risk_list(), tmp_path, ScoringConfig(formats=["csv"])) == {"csv": "at_risk.csv"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["at_risk.csv"]


def test_spreadsheet_safe_quotes_only_text_that_starts_a_formula():
    frame = pd.DataFrame({"text": ["=1", "+1", "-1", "@a", "\tx", "\rx", "a=1", "x-1", None],
                          "number": [-1.0, 1, 2, 3, 4, 5, 6, 7, 8]})
    safe = spreadsheet_safe(frame)
    assert safe["text"].tolist()[:8] == ["'=1", "'+1", "'-1", "'@a", "'\tx", "'\nx", "a=1", "x-1"]
    assert pd.isna(safe["text"].iloc[8]) and safe["number"].tolist() == frame["number"].tolist()


# LibreOffice reads the files as a person opening them would, with formulas evaluated (as
# Excel always does). Headless, it takes a CSV's character set from the filter options
# rather than from a byte-order mark, so they name UTF-8 as the import dialog would.
SOFFICE = shutil.which("soffice")
needs_libreoffice = pytest.mark.skipif(
    SOFFICE is None, reason="LibreOffice (soffice) is not installed; `make browser` installs Debian's "
                            "libreoffice-calc-nogui when run as root with apt-get")


def convert(source: Path, to: str, out: Path, infilter: str | None = None) -> Path:
    out.mkdir(exist_ok=True)
    profile = (out / "profile").as_uri()  # its own profile: parallel runs of soffice do not collide
    command = [SOFFICE, f"-env:UserInstallation={profile}", "--headless", "--convert-to", to, "--outdir", str(out)]
    if infilter:
        command.append(f"--infilter={infilter}")
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=180, check=False)
    converted = out / f"{source.stem}.{to.split(':')[0]}"
    assert result.returncode == 0 and converted.exists(), result.stdout + result.stderr
    return converted


# Tokens: separator, text quote, character set (76 = UTF-8), first line, column types,
# language, quoted as text, detect special numbers, (3 export-only tokens), evaluate formulas.
def csv_infilter(separator: str, language: int) -> str:
    return f"CSV:{ord(separator)},34,76,1,,{language},false,true,false,false,false,-1,true"


@needs_libreoffice
@pytest.mark.parametrize("options", [
    {},  # the default: comma, point, no byte-order mark
    {"delimiter": ";", "decimal": ",", "excel_bom": True},  # what a German Excel wants
], ids=["default", "german-excel"])
def test_libreoffice_reads_the_csv_with_names_intact_and_no_formula(options, tmp_path):
    listed = at_risk_list()
    cfg = ScoringConfig(csv=options)
    write_at_risk_files(listed, tmp_path, cfg)
    language = 1031 if options else 1033  # de-DE reads a decimal comma; en-US a decimal point
    book = openpyxl.load_workbook(convert(tmp_path / "at_risk.csv", "xlsx", tmp_path / "lo",
                                          csv_infilter(cfg.csv.delimiter, language)))
    rows = list(book.active.iter_rows())
    header = [cell.value for cell in rows[0]]
    assert header == AT_RISK_COLUMNS + PASSTHROUGH  # a byte-order mark does not stick to customer_id
    names = {row[header.index("name")].value: row for row in rows[1:]}
    for name in NAMES:
        assert name in names, name
    for formula in FORMULAS:
        cell = names["'" + as_written(formula)][header.index("name")]
        assert cell.data_type == "s", formula  # text, shown with its quote, not a formula's result
    assert not [cell for row in rows for cell in row if cell.data_type == "f"]
    numbers = [row[header.index("churn_probability")].value for row in rows[1:]]
    assert all(isinstance(v, float) for v in numbers) and max(numbers) == pytest.approx(0.95)
    balances = [row[header.index("balance")].value for row in rows[1:]]
    assert all(isinstance(v, int | float) for v in balances) and min(balances) < 0


@needs_libreoffice
def test_libreoffice_opens_the_workbook_with_names_intact_typed_cells_and_no_formula(written, tmp_path):
    folder, listed = written
    as_csv = convert(folder / "at_risk.xlsx", "csv:Text - txt - csv (StarCalc):44,34,76,1", tmp_path / "csv")
    shown = pd.read_csv(as_csv, dtype=str, keep_default_na=False, encoding="utf-8")
    assert list(shown.columns) == AT_RISK_COLUMNS + PASSTHROUGH
    assert set(shown["name"]) == {as_written(name) for name in ALL_NAMES}  # as typed, no formula results
    first = shown.iloc[0]
    assert (first["customer_id"], first["as_of_date"], first["churn_probability"]) == ("00001", "2026-01-01", "95.00%")
    assert first["predicted_clv"] == "1,000.00 EUR" and first["rank"] == "1"
    resaved = openpyxl.load_workbook(convert(folder / "at_risk.xlsx", "xlsx", tmp_path / "xlsx"))
    cells = [cell for row in resaved.active.iter_rows() for cell in row]
    assert not [cell.value for cell in cells if cell.data_type == "f"]
    assert {cell.value for cell in cells} >= set(NAMES) | {FORMULAS[0]}


def test_the_workbook_holds_the_top_of_the_list_and_the_csv_all_of_it(tmp_path):
    from openpyxl import load_workbook

    listed = at_risk_list()
    cfg = ScoringConfig(formats=["csv", "xlsx"], xlsx_max_rows=2)
    write_at_risk_files(listed, tmp_path, cfg)
    sheet = load_workbook(tmp_path / "at_risk.xlsx").active
    assert sheet.max_row == 1 + 2  # the header and the first two customers
    assert [row[0].value for row in sheet.iter_rows(min_row=2)] == listed["customer_id"].head(2).tolist()
    assert len(pd.read_csv(tmp_path / "at_risk.csv")) == len(listed) > 2


def test_a_control_character_before_a_formula_does_not_smuggle_it_into_the_workbook(tmp_path):
    """The workbook's XML cannot hold control characters, so they are dropped; what is left
    must still be judged, and written, as text."""
    from openpyxl import load_workbook

    listed = at_risk_list()
    listed.loc[0, "name"] = '\x01=HYPERLINK("http://evil.example","Open")'
    listed.loc[1, "name"] = "\x0b+SUM(1,2)"
    write_at_risk_files(listed, tmp_path, ScoringConfig(formats=["xlsx"]))
    sheet = load_workbook(tmp_path / "at_risk.xlsx").active
    column = [cell.value for cell in sheet[1]].index("name") + 1
    for row, text in ((2, '=HYPERLINK("http://evil.example","Open")'), (3, "+SUM(1,2)")):
        cell = sheet.cell(row=row, column=column)
        assert cell.data_type == "s" and cell.value == text and cell.quotePrefix
