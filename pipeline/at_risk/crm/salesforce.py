"""Salesforce: Contact import files for the Data Import Wizard, matched on Email (or on the
Salesforce.com ID when `scoring.crm.record_id_column` is set), and the Contact custom fields
they fill, in the shape of the Metadata API's CustomField.

What Salesforce documents, and what follows from it here:
- Import limits, https://help.salesforce.com/s/articleView?id=xcloud.import_limits.htm : the
  Data Import Wizard imports 50,000 contacts at a time; an import file can be up to 100 MB,
  each record at most 400 KB, up to 90 fields per record.
- The wizard matches existing contacts by Salesforce.com ID, name or email, but a contact by
  email only within the same account (the import steps,
  https://advologixpm-legacy.screenstepslive.com/a/589071-importing-accounts-contacts , and
  https://help.salesforce.com/s/articleView?id=sf.faq_import_general.htm): where contacts
  belong to accounts, match on the record id (`scoring.crm.record_id_column`). It maps the
  file's columns to fields by their headers, and data in unmapped columns is not imported;
  the file is read in the character encoding chosen in the wizard (choose UTF-8; quoted from
  Salesforce's "Use the Data Import Wizard" at
  https://pathtosalesforce.com/index.php/courses/home?quizId=102&view=quiz).
- Notes on importing data,
  https://help.salesforce.com/apex/HTViewHelpDoc?id=xcloud.notes_on_importing_data.htm : a
  value a restricted picklist does not hold is replaced by its default value; a date must be
  written as Salesforce shows dates in the importing user's locale (its "Date/Time Fields"
  note, quoted at https://ryanwingate.com/salesforce/administrator/modules/data-management/),
  hence `scoring.crm.salesforce_date_format`, default en_US MM/dd/yyyy.
- Field reference,
  https://developer.salesforce.com/docs/atlas.en-us.256.0.sfFieldRef.meta/sfFieldRef/salesforce_field_reference.htm :
  precision is the number's total digits, both sides of the decimal point; scale the digits
  after it. A custom field's API name ends in __c."""

from __future__ import annotations

from pipeline.at_risk.crm.fields import (
    CRM_FIELDS,
    EMAIL_AND_NAMES,
    NUMBER_DECIMALS,
    NUMBER_DIGITS,
    TEXT_LENGTHS,
    CrmFormat,
    allowed_values,
    describe,
)
from pipeline.at_risk.crm.splitting import FileLimits
from pipeline.config import CrmConfig, ScoringConfig

LIMITS = FileLimits(max_records=50_000, max_bytes=100 * 1000 * 1000)
# Java-style patterns of Salesforce locales -> strftime
DATE_PATTERNS = {"MM/dd/yyyy": "%m/%d/%Y", "yyyy-MM-dd": "%Y-%m-%d", "dd/MM/yyyy": "%d/%m/%Y", "dd.MM.yyyy": "%d.%m.%Y"}
FIELD_TYPES = {"probability": "Number", "money": "Number", "tier": "Picklist", "segment": "Picklist",
               "text": "Text", "long_text": "LongTextArea", "date": "Date"}


def identity(crm: CrmConfig) -> list[tuple[str, str]]:
    """Matched on the Salesforce.com ID when a record id column is configured, else on Email."""
    return [("Id", "record_id"), *EMAIL_AND_NAMES] if crm.record_id_column else list(EMAIL_AND_NAMES)


def custom_fields(cfg: ScoringConfig) -> dict:
    """The Contact custom fields the import files fill, one CustomField each."""
    fields = []
    for field in CRM_FIELDS:
        api_name = f"{field.api_name}__c"
        definition = {"fullName": f"Contact.{api_name}", "apiName": api_name, "label": field.label,
                      "type": FIELD_TYPES[field.kind], "description": describe(field, cfg),
                      "inlineHelpText": describe(field, cfg)}
        if field.kind in NUMBER_DECIMALS:
            definition |= {"precision": NUMBER_DIGITS[field.kind], "scale": NUMBER_DECIMALS[field.kind]}
        elif field.kind in TEXT_LENGTHS:
            definition["length"] = TEXT_LENGTHS[field.kind]
            if field.kind == "long_text":
                definition["visibleLines"] = 3
        values = allowed_values(field, cfg)
        if values is not None:
            definition["valueSet"] = {"restricted": True, "valueSetDefinition": {
                "sorted": False, "value": [{"fullName": value, "label": value, "default": False} for value in values]}}
        fields.append(definition)
    return {"object": "Contact", "fields": fields}


SALESFORCE = CrmFormat(
    name="salesforce", limits=LIMITS, identity=identity,
    date_pattern=lambda cfg: DATE_PATTERNS[cfg.crm.salesforce_date_format],
    definitions_file="salesforce_custom_fields.json", definitions=custom_fields,
)
