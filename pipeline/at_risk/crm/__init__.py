"""Handing the at-risk list back to the CRM: for every CRM of `scoring.exports`, a folder
`crm/<crm>/` beside the list (in its staging folder, so it is published whole with it) with the
contacts import files, split within the import tool's limits, and the definitions of the
custom fields they fill, for an admin to create once.

A row of a CRM file is a row of the list, in the list's order, that the CRM can match: with an
email (Salesforce: with a record id, when `scoring.crm.record_id_column` is set) not already
given by a row above. The others are left out and counted in the manifest. Every text cell
is on one line and safe to open in a spreadsheet (`listing.spreadsheet_safe`), but for the
keys the CRM matches on, which must stay exactly as the CRM holds them; numbers are
plain ('.' decimals, no thousands separator, no currency); the as-of date is written as the
tool reads dates. The files are UTF-8 without a BOM: each of the three tools reads UTF-8 and
none needs one. The same list gives the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pipeline.at_risk.crm.contacts import contact_rows, matchable
from pipeline.at_risk.crm.fields import (
    CRM_FIELDS,
    NUMBER_DECIMALS,
    CrmFormat,
    dates_as,
    formula_safe,
    one_line,
    plain_numbers,
)
from pipeline.at_risk.crm.hubspot import HUBSPOT
from pipeline.at_risk.crm.salesforce import SALESFORCE
from pipeline.at_risk.crm.splitting import FileLimits, write_split_csv
from pipeline.at_risk.crm.zoho import ZOHO
from pipeline.config import ScoringConfig
from pipeline.files import file_sha256

CRM_FORMATS = {crm.name: crm for crm in (HUBSPOT, SALESFORCE, ZOHO)}
MATCH_KEYS = ("email", "record_id")


def write_crm_exports(at_risk: pd.DataFrame, contacts: pd.DataFrame | None, folder: Path, cfg: ScoringConfig,
                      limits: dict[str, FileLimits] | None = None) -> dict:
    """Write `crm/<crm>/` into `folder` for every configured CRM, from the list and the
    customers' contact columns (`contacts.fetch_contacts`); return what the manifest records
    per CRM: each file with its rows and sha256, and the rows left out, by reason. `limits`
    replaces a CRM's file limits (a test splits a short list so)."""
    people = contact_rows(at_risk, contacts)
    # The keys a CRM matches a contact by go as they are: a quote before `-dash@example.com`
    # would make the CRM create a second, wrong contact. An import tool reads them as text.
    cells = {field: people[field] if field in MATCH_KEYS else formula_safe(people[field])
             for field in people.columns} | field_cells(at_risk)
    written = {}
    for name in cfg.exports:
        crm = CRM_FORMATS[name]
        target = Path(folder) / "crm" / name
        target.mkdir(parents=True, exist_ok=True)
        identity = crm.identity(cfg.crm)
        kept, left_out = matchable(people, identity[0][1])
        files = write_split_csv(import_cells(cells, kept, identity, crm, cfg), target, crm.file_stem,
                                (limits or {}).get(name, crm.limits))
        definitions = target / crm.definitions_file
        definitions.write_text(json.dumps(crm.definitions(cfg), indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
        written[name] = {
            "files": {f"crm/{name}/{file}": {"rows": rows, "sha256": file_sha256(target / file)}
                      for file, rows in files},
            "field_definitions": {f"crm/{name}/{definitions.name}": {"sha256": file_sha256(definitions)}},
            "matched_on": identity[0][0],
            "rows_written": int(kept.sum()),
            "rows_left_out": left_out,
        }
    return written


def field_cells(at_risk: pd.DataFrame) -> dict[str, pd.Series]:
    """The custom fields' cells of every row, the same in every CRM's file, by field name:
    numbers written plainly, text on one line and formula-safe (a negative amount is a number,
    not a formula), and the date still ISO (each CRM writes it its own way)."""
    cells = {}
    for field in CRM_FIELDS:
        values = at_risk[field.column]
        if field.kind in NUMBER_DECIMALS:
            cells[field.name] = plain_numbers(values, NUMBER_DECIMALS[field.kind])
        elif field.kind == "date":
            cells[field.name] = values
        else:
            cells[field.name] = formula_safe(one_line(values, values.index))
    return cells


def import_cells(cells: dict[str, pd.Series], kept: pd.Series, identity: list[tuple[str, str]], crm: CrmFormat,
                 cfg: ScoringConfig) -> pd.DataFrame:
    """One CRM's import file, all text, under its headers: the kept rows' contact columns, then
    one column per custom field, with the CRM's date pattern and its own rule for text."""
    columns = {header: cells[field][kept] for header, field in identity}
    columns |= {field.label: cells[field.name][kept] for field in CRM_FIELDS}
    for field in CRM_FIELDS:
        if field.kind == "date":
            columns[field.label] = dates_as(columns[field.label], crm.date_pattern(cfg))
    if crm.clean_text is not None:
        numbers = {field.label for field in CRM_FIELDS if field.kind in NUMBER_DECIMALS}
        columns |= {header: crm.clean_text(text) for header, text in columns.items() if header not in numbers}
    return pd.DataFrame(columns)
