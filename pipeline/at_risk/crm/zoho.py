"""Zoho CRM: Contacts import files (Import My Organization Contacts), matched on Email, and the
Contacts custom fields they fill, with the keys of the fields API (field_label, data_type, ...).

What Zoho documents, and what follows from it here:
- Import checklist, http://www.zoho.com/crm/help/data-administration/import-data.html : XLS,
  XLSX, CSV or VCF files, one line of text per record; data must not hold double quotation
  marks (they only delimit fields), vertical bars or angle brackets, so text cells here write
  " as ', | as / and < > as ‹ ›; a drop-down value must exist in the field; check boxes 1 or 0.
- Records per import, https://help.zoho.com/portal/en/kb/crm/faqs/data-administration/import/articles/faqs-import :
  XLS/XLSX/VCF files up to 5,000 records per batch; more only as CSV, up to 1,000 (Free
  edition), 10,000 (Standard), 20,000 (Professional) or 30,000 (Enterprise) records per batch.
  Files here hold 10,000, the Standard edition's batch.
- Zoho's import rules as its partners quote them
  (https://support.crmasiasolutions.com/portal/en/kb/articles/rules-for-data-importing-in-zoho-crm):
  the first row holds the field names; date values in MM/dd/yyyy (others are ignored);
  UTF-8 by default; a file of at most 5 MB; duplicates of Leads and Contacts are found on
  the Email field. (The Bulk Write API takes 25,000 records and 25 MB per file,
  https://zoho.com/crm/developer/docs/api/v6/bulk-write/limitations.html .)
- Fields API, https://zoho.com/crm/developer/docs/api/v8/create-custom-field.html : a field
  has field_label, data_type (text, textarea, double, picklist, date, ...), length,
  decimal_place and pick_list_values (display_value, actual_value); at most five fields per
  call. A decimal holds at most 16 digits, decimals included."""

from __future__ import annotations

import pandas as pd

from pipeline.at_risk.crm import fields as shared
from pipeline.at_risk.crm.splitting import FileLimits
from pipeline.config import ScoringConfig

LIMITS = FileLimits(max_records=10_000, max_bytes=5 * 1000 * 1000)
FORBIDDEN = str.maketrans({'"': "'", "|": "/", "<": "‹", ">": "›"})
DATA_TYPES = {"probability": "double", "money": "double", "tier": "picklist", "segment": "picklist",
              "text": "text", "long_text": "textarea", "date": "date"}


def without_forbidden_characters(text: pd.Series) -> pd.Series:
    return shared.per_distinct(text, lambda distinct: [value.translate(FORBIDDEN) for value in distinct])


def field_definitions(cfg: ScoringConfig) -> dict:
    """The Contacts custom fields the import files fill."""
    definitions = []
    for field in shared.CRM_FIELDS:
        definition = {"api_name": field.api_name, "field_label": field.label, "data_type": DATA_TYPES[field.kind],
                      "tooltip": {"name": "static_text", "value": shared.describe(field, cfg)}}
        if field.kind in shared.NUMBER_DECIMALS:
            definition |= {"length": shared.NUMBER_DIGITS[field.kind],
                           "decimal_place": shared.NUMBER_DECIMALS[field.kind]}
        elif field.kind in shared.TEXT_LENGTHS:
            definition["length"] = shared.TEXT_LENGTHS[field.kind]
        values = shared.allowed_values(field, cfg)
        if values is not None:
            definition["pick_list_values"] = [{"display_value": value, "actual_value": value} for value in values]
        definitions.append(definition)
    return {"module": "Contacts", "fields": definitions}


ZOHO = shared.CrmFormat(
    name="zoho", limits=LIMITS, identity=shared.matched_on_email, date_pattern=lambda cfg: "%m/%d/%Y",
    definitions_file="zoho_fields.json", definitions=field_definitions, clean_text=without_forbidden_characters,
)
