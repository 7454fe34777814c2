"""HubSpot: contacts import files matched on Email, and the contact properties they fill, as
the body of the properties API's batch create (`POST /crm/v3/properties/contacts/batch/create`).

What HubSpot documents, and what follows from it here:
- Set up import files, https://knowledge.hubspot.com/import-and-export/set-up-your-import-file :
  a .csv (or .xlsx/.xls) file with one sheet and a header row whose headers correspond to
  properties, in any order; fewer than 1,000 columns; UTF-8 when it holds non-English
  characters (no BOM needed). Starter, Professional and Enterprise accounts import files up
  to 512 MB with up to 1,048,576 rows per file (HubSpot's free tools: 20 MB per file).
- An import updates the contacts it can match, and Email is the contacts' unique identifier
  (https://knowledge.hubspot.com/crm-setup/set-up-your-import-file, "Unique identifier";
  http://knowledgeqa.hs-sites.com/crm-setup/import-frequently-asked-questions); the default
  contact properties are labelled Email, First Name and Last Name.
- Properties API, https://developers.hubspot.com/docs/api/crm/properties : a property is
  name, label, type, fieldType, groupName, description and, for a dropdown, options (label,
  value, displayOrder, hidden); `type` date with fieldType date holds a day, as ISO 8601
  (2026-01-01). contactinformation is the contacts' default property group.
- Number values hold digits, an optional leading minus and one '.' as the decimal mark; no
  commas, spaces or currency symbols
  (https://developers.hubspot.com/changelog/upcoming-api-number-value-changes).
- The import asks for the file's date format: choose year-month-day (`YEAR_MONTH_DAY` in the
  imports API, https://developers.hubspot.com/docs/api/crm/imports)."""

from __future__ import annotations

from pipeline.at_risk.crm.fields import CRM_FIELDS, CrmFormat, allowed_values, describe, matched_on_email
from pipeline.at_risk.crm.splitting import FileLimits
from pipeline.config import ScoringConfig

# 1,048,576 rows per file, counted like a worksheet's rows: the header row is one of them.
LIMITS = FileLimits(max_records=1_048_576 - 1, max_bytes=512 * 1000 * 1000)
GROUP_NAME = "contactinformation"
# kind -> (type, fieldType) of the properties API
PROPERTY_TYPES = {
    "probability": ("number", "number"), "money": ("number", "number"),
    "tier": ("enumeration", "select"), "segment": ("enumeration", "select"),
    "text": ("string", "text"), "long_text": ("string", "textarea"), "date": ("date", "date"),
}


def property_definitions(cfg: ScoringConfig) -> dict:
    """The batch create request of the custom contact properties the import files fill."""
    inputs = []
    for order, field in enumerate(CRM_FIELDS, 1):
        kind, field_type = PROPERTY_TYPES[field.kind]
        definition = {"name": field.name, "label": field.label, "type": kind, "fieldType": field_type,
                      "groupName": GROUP_NAME, "description": describe(field, cfg), "displayOrder": order,
                      "formField": False}
        values = allowed_values(field, cfg)
        if values is not None:
            definition["options"] = [{"label": value, "value": value, "displayOrder": position, "hidden": False}
                                     for position, value in enumerate(values, 1)]
        inputs.append(definition)
    return {"inputs": inputs}


HUBSPOT = CrmFormat(
    name="hubspot", limits=LIMITS, identity=matched_on_email, date_pattern=lambda cfg: "%Y-%m-%d",
    definitions_file="hubspot_properties.json", definitions=property_definitions,
)
