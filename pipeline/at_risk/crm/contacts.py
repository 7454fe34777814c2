"""Who each row of the list is to a CRM: the email, first and last name and CRM record id of
the customer, from the customers columns `scoring.crm` names; and which rows a CRM can match.

A customer without a first or last name of their own gets them from the full name: "Last,
First", or split at the last space ("Anna van Dijk" -> "Anna van" + "Dijk"); a name of one word
is a last name, which Salesforce and Zoho require of a new contact. Text is written on one line
(line breaks and tabs become spaces, ends trimmed): Zoho reads one record per line."""

from __future__ import annotations

import pandas as pd

from pipeline.at_risk.crm.fields import one_line, per_distinct
from pipeline.at_risk.scores import customer_columns, customer_columns_of
from pipeline.config import CrmConfig, ScoringConfig
from pipeline.errors import ConfigError
from pipeline.tables import Tables

CONTACT_FIELDS = ("email", "first_name", "last_name", "record_id")


def contact_sources(crm: CrmConfig) -> dict[str, str]:
    """Contact field (and `name`, the full name) -> the customers column configured for it."""
    sources = {"email": crm.email_column, "first_name": crm.first_name_column,
               "last_name": crm.last_name_column, "name": crm.name_column}
    if crm.record_id_column:
        sources["record_id"] = crm.record_id_column
    return sources


def check_contact_columns(tables: Tables, cfg: ScoringConfig) -> None:
    """With exports configured, customers must hold the email column (every CRM file matches
    on it, or Salesforce on the record id column, when one is set). The name columns are used
    where customers has them."""
    if not cfg.exports:
        return
    available = customer_columns(tables)
    needed = {"scoring.crm.email_column": cfg.crm.email_column,
              "scoring.crm.record_id_column": cfg.crm.record_id_column}
    missing = {key: column for key, column in needed.items() if column and column not in available}
    if missing:
        named = " and ".join(f"{key} ({column!r})" for key, column in missing.items())
        raise ConfigError(
            f"scoring.exports writes import files for {', '.join(cfg.exports)}, which match each customer on "
            f"{named}, but the customers table has no such column (it has {sorted(available)}). Add the column to "
            "customers, name the column that holds it in scoring.crm, or set scoring.exports: [] to write no CRM files."
        )


def fetch_contacts(tables: Tables, cfg: ScoringConfig) -> pd.DataFrame | None:
    """customer_id and the contact fields (plus `name`) of every customer, from the
    configured columns customers has; None when no export is configured."""
    if not cfg.exports:
        return None
    available = customer_columns(tables)
    sources = {field: column for field, column in contact_sources(cfg.crm).items() if column in available}
    found = customer_columns_of(tables, list(dict.fromkeys(sources.values())))
    return pd.DataFrame({"customer_id": found["customer_id"].astype(str),
                         **{field: found[column] for field, column in sources.items()}})


def split_full_name(name: str) -> tuple[str, str]:
    """(first name, last name) of a full name: "Last, First", or split at the last space."""
    if "," in name:
        last, _, first = name.partition(",")
    else:
        first, _, last = name.rpartition(" ")
    return first.strip(), last.strip()


def contact_rows(at_risk: pd.DataFrame, contacts: pd.DataFrame | None) -> pd.DataFrame:
    """The contact fields of every row of the list, in its order and with its index."""
    if contacts is None:
        contacts = pd.DataFrame({"customer_id": pd.Series(dtype=str)})
    found = at_risk[["customer_id"]].astype(str).merge(contacts, how="left", on="customer_id")
    index = at_risk.index
    people = pd.DataFrame({field: one_line(found.get(field), index) for field in CONTACT_FIELDS}, index=index)
    names = one_line(found.get("name"), index)
    first = per_distinct(names, lambda distinct: [split_full_name(name)[0] for name in distinct])
    last = per_distinct(names, lambda distinct: [split_full_name(name)[1] for name in distinct])
    unnamed = (people["first_name"] == "") & (people["last_name"] == "")
    people["first_name"] = people["first_name"].where(~unnamed, first)
    people["last_name"] = people["last_name"].where(~unnamed, last)
    return people


def matchable(people: pd.DataFrame, key: str) -> tuple[pd.Series, dict[str, int]]:
    """Which rows a CRM can match on contact field `key` (True), and how many it cannot, by
    reason: no value, or the value of a row above (a CRM updates one contact once per file,
    and the list's order puts the most value at risk first). Emails compare ignoring case."""
    value = people[key]
    present = value != ""
    seen = (value.str.lower() if key == "email" else value).where(present)
    repeated = present & seen.duplicated()
    return present & ~repeated, {f"no_{key}": int((~present).sum()), f"repeated_{key}": int(repeated.sum())}
