"""The CRM import files beside the list: each CRM's headers, value formats and field
definitions as its import tool documents them, names split and formula-safe, rows a CRM
cannot match left out and counted, large lists split within the limits, and the same bytes
on a rerun. Real files, written by the real writer."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.at_risk.crm import CRM_FORMATS, write_crm_exports
from pipeline.at_risk.crm.fields import CRM_FIELDS
from pipeline.at_risk.crm.splitting import FileLimits
from pipeline.at_risk.listing import FORMULA_TRIGGERS, TEXT_PREFIX, build_at_risk_list, value_at_risk
from pipeline.at_risk.tiers import TIERS
from pipeline.config import DEFAULT_SEGMENTS, ScoringConfig, parse_config
from tests.pipeline.at_risk.test_files import AS_OF, FORMULAS

LABELS = [field.label for field in CRM_FIELDS]
NAMES = ["Jürgen Müller", "Müller, Jürgen", "Zoë", "Anna van Dijk", 'Anna "Nan" <Smith> | Jr', "  Zoë\nMultiline "]
ALL_NAMES = NAMES + FORMULAS
RECORD_IDS = (0, 1, 10)
NUMBERS = ("Churn probability", "Predicted CLV", "Value at risk")
PROBABILITY, MONEY = re.compile(r"^-?\d+\.\d{4}$"), re.compile(r"^-?\d+\.\d{2}$")


def scoring(**crm) -> ScoringConfig:
    return parse_config({"scoring": {"exports": ["hubspot", "salesforce", "zoho"], "crm": crm}}).scoring


def listed(n: int = len(ALL_NAMES), as_of: dt.date = AS_OF) -> pd.DataFrame:
    """A list built by the real builder, with a negative CLV and a formula-like reason."""
    probability = np.linspace(0.95, 0.05, n)
    clv = np.linspace(1234567.891, 10.0, n)
    clv[n // 2] = -20.0
    scored = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in range(n)], "churn_probability": probability, "predicted_clv": clv,
        "value_at_risk": value_at_risk(probability, clv), "risk_tier": [TIERS[i % len(TIERS)] for i in range(n)],
        "top_reasons": ["=1+1; no purchase for 94 days\n(usually every 21)"] + ["spent 3 in 90 days"] * (n - 1),
        "segment": [DEFAULT_SEGMENTS[i % len(DEFAULT_SEGMENTS)].name for i in range(n)],
        "recommended_action": ["win-back offer"] * n,
    })
    return build_at_risk_list(scored, as_of, "3", "4", scored[["customer_id"]], ScoringConfig())


def contacts_of(at_risk: pd.DataFrame) -> pd.DataFrame:
    """Contacts in the shape `fetch_contacts` returns: every customer has a name; c0010 has
    no email, c0011 repeats c0001's email in capitals, c0009's address starts with a formula
    trigger, c0008 has first and last names of its own; c0000, c0001 and c0010 have a record id."""
    ids = sorted(at_risk["customer_id"])
    names = [ALL_NAMES[i % len(ALL_NAMES)] for i in range(len(ids))]
    email = [f"c{i}@example.org" for i in range(len(ids))]
    email[10], email[11], email[9] = None, "C1@EXAMPLE.ORG", "-dash@example.org"
    first, last = [None] * len(ids), [None] * len(ids)
    first[8], last[8] = "Ann", "Dijk-Smit"
    return pd.DataFrame({"customer_id": ids, "email": email, "name": names, "first_name": first, "last_name": last,
                         "record_id": [f"003{i:012d}" if i in RECORD_IDS else None for i in range(len(ids))]})


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, pd.DataFrame, dict]:
    folder = tmp_path_factory.mktemp("crm")
    at_risk = listed()
    return folder, at_risk, write_crm_exports(at_risk, contacts_of(at_risk), folder, scoring())


def by_customer(at_risk: pd.DataFrame, contacts: pd.DataFrame, column: str = "email") -> dict[str, pd.Series]:
    """The list's rows by the customer's email (as written)."""
    merged = at_risk.merge(contacts, on="customer_id")
    return {row[column]: row for _, row in merged.iterrows() if isinstance(row[column], str)}


@pytest.mark.parametrize(("crm", "date_format", "date"), [
    ("hubspot", r"^\d{4}-\d{2}-\d{2}$", "2026-01-01"),
    ("salesforce", r"^\d{2}/\d{2}/\d{4}$", "01/01/2026"),
    ("zoho", r"^\d{2}/\d{2}/\d{4}$", "01/01/2026"),
])
def test_each_crm_file_has_the_documented_headers_and_value_formats(exported, crm, date_format, date):
    folder, at_risk, _ = exported
    header, rows = read_rows(folder / "crm" / crm / f"{crm}_contacts_001.csv")
    assert header == ["Email", "First Name", "Last Name", *LABELS]
    assert header[3:] == ["Churn probability", "Churn risk tier", "Predicted CLV", "Value at risk",
                          "Churn top reasons", "RFM segment", "Retention action", "Churn scored on"]
    rows_of = by_customer(at_risk, contacts_of(at_risk))
    for row in rows:
        source = rows_of[row["Email"]]
        assert PROBABILITY.match(row["Churn probability"]) and MONEY.match(row["Predicted CLV"])
        assert MONEY.match(row["Value at risk"]) and "," not in row["Predicted CLV"]
        assert float(row["Churn probability"]) == pytest.approx(source["churn_probability"], abs=5e-5)
        assert float(row["Predicted CLV"]) == pytest.approx(source["predicted_clv"], abs=0.005)
        assert float(row["Value at risk"]) == pytest.approx(source["value_at_risk"], abs=0.005)
        assert re.match(date_format, row["Churn scored on"]) and row["Churn scored on"] == date
        assert row["Churn risk tier"] in TIERS and row["Retention action"] == "win-back offer"
    assert "-20.00" in {row["Predicted CLV"] for row in rows}  # a negative amount stays a number
    assert "1234567.89" in {row["Predicted CLV"] for row in rows}  # no thousands separator


def test_the_files_are_utf8_without_a_bom_and_one_line_per_record(exported):
    folder, _, written = exported
    for crm, export in written.items():
        for name, entry in export["files"].items():
            raw = (folder / name).read_bytes()
            assert not raw.startswith(b"\xef\xbb\xbf") and "Müller".encode() in raw
            assert raw.count(b"\n") == entry["rows"] + 1 and b"\r" not in raw, crm


def test_allowed_values_of_tier_and_segment_match_the_definition_files(exported):
    folder, _, _ = exported
    segments = [rule.name for rule in DEFAULT_SEGMENTS] + ["others"]
    hubspot = json.loads((folder / "crm/hubspot/hubspot_properties.json").read_text(encoding="utf-8"))["inputs"]
    salesforce = json.loads((folder / "crm/salesforce/salesforce_custom_fields.json").read_text(encoding="utf-8"))
    zoho = json.loads((folder / "crm/zoho/zoho_fields.json").read_text(encoding="utf-8"))["fields"]
    options = {
        "hubspot": {p["label"]: [o["value"] for o in p.get("options", [])] for p in hubspot},
        "salesforce": {f["label"]: [v["fullName"] for v in f.get("valueSet", {}).get("valueSetDefinition", {})
                                    .get("value", [])] for f in salesforce["fields"]},
        "zoho": {f["field_label"]: [v["actual_value"] for v in f.get("pick_list_values", [])] for f in zoho},
    }
    for crm, allowed in options.items():
        assert allowed["Churn risk tier"] == list(TIERS) and allowed["RFM segment"] == segments
        _, rows = read_rows(folder / "crm" / crm / f"{crm}_contacts_001.csv")
        assert {row["Churn risk tier"] for row in rows} <= set(allowed["Churn risk tier"])
        assert {row["RFM segment"] for row in rows} <= set(allowed["RFM segment"])


def test_the_definition_files_name_every_field_in_each_crms_shape(exported):
    folder, _, _ = exported
    hubspot = json.loads((folder / "crm/hubspot/hubspot_properties.json").read_text(encoding="utf-8"))["inputs"]
    assert [p["name"] for p in hubspot] == [field.name for field in CRM_FIELDS]
    for prop in hubspot:
        assert {"name", "label", "type", "fieldType", "groupName", "description"} <= set(prop)
        assert re.fullmatch(r"[a-z][a-z0-9_]*", prop["name"]) and prop["description"]
    kinds = {p["label"]: (p["type"], p["fieldType"]) for p in hubspot}
    assert kinds["Churn probability"] == ("number", "number") and kinds["Churn scored on"] == ("date", "date")
    assert kinds["Churn risk tier"] == ("enumeration", "select")
    assert "in EUR" in next(p["description"] for p in hubspot if p["label"] == "Value at risk")

    salesforce = json.loads((folder / "crm/salesforce/salesforce_custom_fields.json").read_text(encoding="utf-8"))
    fields = {f["label"]: f for f in salesforce["fields"]}
    assert salesforce["object"] == "Contact" and all(f["apiName"].endswith("__c") for f in fields.values())
    assert fields["Churn probability"]["apiName"] == "Churn_Probability__c"
    assert (fields["Churn probability"]["type"], fields["Churn probability"]["precision"],
            fields["Churn probability"]["scale"]) == ("Number", 5, 4)
    assert (fields["Value at risk"]["precision"], fields["Value at risk"]["scale"]) == (14, 2)
    assert fields["Churn risk tier"]["type"] == "Picklist" and fields["Churn risk tier"]["valueSet"]["restricted"]
    assert fields["Churn scored on"]["type"] == "Date" and fields["Retention action"]["length"] == 255

    zoho = {f["field_label"]: f for f in json.loads((folder / "crm/zoho/zoho_fields.json").read_text())["fields"]}
    assert {f["data_type"] for f in zoho.values()} == {"double", "picklist", "textarea", "text", "date"}
    assert (zoho["Churn probability"]["length"], zoho["Churn probability"]["decimal_place"]) == (5, 4)
    assert all(len(label) <= 25 and f["tooltip"]["value"] for label, f in zoho.items())


def test_names_are_split_and_formula_like_cells_are_neutralised(exported):
    folder, at_risk, _ = exported
    contacts = contacts_of(at_risk)
    for crm in ("hubspot", "salesforce", "zoho"):
        _, rows = read_rows(folder / "crm" / crm / f"{crm}_contacts_001.csv")
        names = {row["Email"]: (row["First Name"], row["Last Name"]) for row in rows}
        email_of = dict(zip(contacts["name"], contacts["email"], strict=True))
        assert names[email_of["Jürgen Müller"]] == ("Jürgen", "Müller")
        assert names[email_of["Zoë"]] == ("", "Zoë")  # one word: a last name, which a new contact needs
        assert names[email_of["Anna van Dijk"]] == ("Anna van", "Dijk")
        assert names[email_of["  Zoë\nMultiline "]] == ("Zoë", "Multiline")
        assert names["c8@example.org"] == ("Ann", "Dijk-Smit")  # first and last names of its own come first
        for row in rows:  # no text cell would run as a formula; the quoted ones are marked as text
            assert not any(cell.startswith(FORMULA_TRIGGERS) for key, cell in row.items()
                           if key not in (*NUMBERS, "Email")), row
        # the key the CRM matches on stays as the CRM holds it: a quote would make a new contact
        assert "-dash@example.org" in {row["Email"] for row in rows}
        assert {row["Churn top reasons"] for row in rows} >= {TEXT_PREFIX + "=1+1; no purchase for 94 days (usually every 21)"}
        assert TEXT_PREFIX + "@SUM(A1)" in {row["Last Name"] for row in rows}
        assert TEXT_PREFIX + "+1" in {row["Last Name"] for row in rows}


def test_zoho_text_holds_none_of_the_characters_its_import_forbids(exported):
    folder, at_risk, _ = exported
    _, rows = read_rows(folder / "crm/zoho/zoho_contacts_001.csv")
    cells = [cell for row in rows for cell in row.values()]
    assert not any(set(cell) & set('"|<>') for cell in cells)
    assert "Anna 'Nan' ‹Smith› / Jr" in {f"{row['First Name']} {row['Last Name']}" for row in rows}
    hubspot = {f"{row['First Name']} {row['Last Name']}" for row in read_rows(folder / "crm/hubspot/hubspot_contacts_001.csv")[1]}
    assert 'Anna "Nan" <Smith> | Jr' in hubspot  # only Zoho forbids them


def test_rows_a_crm_cannot_match_are_left_out_and_counted(exported):
    folder, at_risk, written = exported
    assert written["hubspot"]["rows_left_out"] == {"no_email": 1, "repeated_email": 1}
    assert written["hubspot"]["rows_written"] == len(at_risk) - 2 == written["zoho"]["rows_written"]
    _, rows = read_rows(folder / "crm/hubspot/hubspot_contacts_001.csv")
    emails = [row["Email"] for row in rows]
    assert "" not in emails and "C1@EXAMPLE.ORG" not in emails and "c1@example.org" in emails
    in_list_order = contacts_of(at_risk).set_index("customer_id").loc[at_risk["customer_id"], "email"]
    assert emails == [e for e in in_list_order if isinstance(e, str) and e != "C1@EXAMPLE.ORG"]  # most at risk first


def test_salesforce_matches_on_the_record_id_when_one_is_configured(tmp_path):
    at_risk = listed()
    cfg = parse_config({"scoring": {"exports": ["salesforce"], "crm": {"record_id_column": "crm_id",
                                                                       "salesforce_date_format": "dd.MM.yyyy"}}})
    written = write_crm_exports(at_risk, contacts_of(at_risk), tmp_path, cfg.scoring)
    header, rows = read_rows(tmp_path / "crm/salesforce/salesforce_contacts_001.csv")
    assert header == ["Id", "Email", "First Name", "Last Name", *LABELS]
    assert sorted(row["Id"] for row in rows) == [f"003{i:012d}" for i in RECORD_IDS]
    assert "" in {row["Email"] for row in rows}  # c0010 has no email, and its Id matches it
    assert {row["Churn scored on"] for row in rows} == {"01.01.2026"}
    assert written["salesforce"]["matched_on"] == "Id"
    assert written["salesforce"]["rows_left_out"] == {"no_record_id": len(at_risk) - 3, "repeated_record_id": 0}
    assert sorted(p.name for p in (tmp_path / "crm").iterdir()) == ["salesforce"]


def test_a_long_list_is_split_within_the_row_and_byte_limits_with_every_row_once(tmp_path):
    at_risk = listed(200)
    contacts = contacts_of(at_risk)
    limits = {"hubspot": FileLimits(max_records=30, max_bytes=10**6), "zoho": FileLimits(max_records=10**6,
                                                                                          max_bytes=4_000)}
    cfg = parse_config({"scoring": {"exports": ["hubspot", "zoho"]}}).scoring
    written = write_crm_exports(at_risk, contacts, tmp_path, cfg, limits)
    for crm, limit in limits.items():
        files = sorted((tmp_path / "crm" / crm).glob("*.csv"))
        assert [f.name for f in files] == [f"{crm}_contacts_{n:03d}.csv" for n in range(1, len(files) + 1)]
        assert len(files) > 2 and list(written[crm]["files"]) == [f"crm/{crm}/{f.name}" for f in files]
        emails = []
        for file in files:
            header, rows = read_rows(file)
            assert header[0] == "Email" and len(rows) <= limit.max_records
            assert file.stat().st_size <= limit.max_bytes
            assert written[crm]["files"][f"crm/{crm}/{file.name}"]["rows"] == len(rows)
            emails += [row["Email"] for row in rows]
        assert len(emails) == len(set(emails)) == written[crm]["rows_written"] == len(at_risk) - 2
    full = [f.stat().st_size for f in sorted((tmp_path / "crm/zoho").glob("*.csv"))[:-1]]
    assert all(size > 4_000 - 300 for size in full)  # each file is filled before the next begins


def test_a_row_that_cannot_fit_any_file_is_an_error_not_a_file_over_the_limit(tmp_path):
    at_risk = listed()
    with pytest.raises(ValueError, match="cannot fit a file of at most 250 bytes"):
        write_crm_exports(at_risk, contacts_of(at_risk), tmp_path, scoring(),
                          {"hubspot": FileLimits(max_records=10, max_bytes=250)})


def test_a_list_no_crm_can_match_still_gives_each_crm_its_header_file(tmp_path):
    at_risk = listed(4)
    written = write_crm_exports(at_risk, None, tmp_path, scoring())
    for crm in CRM_FORMATS:
        header, rows = read_rows(tmp_path / "crm" / crm / f"{crm}_contacts_001.csv")
        assert header[:3] == ["Email", "First Name", "Last Name"] and rows == []
        assert written[crm]["rows_left_out"]["no_email"] == 4 and written[crm]["rows_written"] == 0


def test_the_same_list_gives_the_same_bytes(tmp_path):
    at_risk = listed(60)
    limits = {"salesforce": FileLimits(max_records=25, max_bytes=10**6)}
    first = write_crm_exports(at_risk, contacts_of(at_risk), tmp_path / "a", scoring(), limits)
    second = write_crm_exports(at_risk, contacts_of(at_risk), tmp_path / "b", scoring(), limits)
    assert first == second
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 3 + 1 + 1 + 3  # 3 Salesforce files, one each for the others, 3 definition files
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_exports_are_validated_when_the_config_is_loaded():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match=r"scoring\.exports\.0: Input should be 'hubspot', 'salesforce' or 'zoho'"):
        parse_config({"scoring": {"exports": ["pipedrive"]}})
    with pytest.raises(ConfigError, match="names a CRM twice"):
        parse_config({"scoring": {"exports": ["zoho", "zoho"]}})
    with pytest.raises(ConfigError, match=r"scoring\.crm\.salesforce_date_format"):
        parse_config({"scoring": {"crm": {"salesforce_date_format": "d/M/yy"}}})
    assert ScoringConfig().exports == [] and ScoringConfig().crm.email_column == "email"
    assert set(CRM_FORMATS) == {"hubspot", "salesforce", "zoho"}
