"""ServiceNow: the incident list's CSV export -> support_tickets, its times in the exporting
user's zone (Europe/Berlin here: UTC+1 in winter, UTC+2 from 2024-03-31 02:00 to
2024-10-27 03:00). Every expected figure is worked out by hand from samples/servicenow/ and
its customers.csv:

    C-1001 Anna Berg   anna@example.com            C-1004 Anna Berg  anna.berg@example.net
    C-1002 Thi Nguyen  t.nguyen@example.org        C-1005 Jo Park    family@example.org
    C-1003 Marc Roux   marc.roux@new-mail.example  C-1006 Sam Park   FAMILY@example.org
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import DataError
from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path
from tests.pipeline.importers.crm_samples import SAMPLES, set_aside
from tests.pipeline.importers.ticket_tables import contract_tables, written_tickets

SERVICENOW = SAMPLES / "servicenow"
CUSTOMERS = SERVICENOW / "customers.csv"
INCIDENTS = SERVICENOW / "incident.csv"
RUN_AT = dt.datetime(2025, 1, 15)
INCIDENTS_IN_UTC = [
    ["INC0010231", "C-1001", "2024-03-10 13:05:12", "2024-03-10 15:40:03", "network", "high", ""],
    # 02:30 does not exist in Berlin that night: read at +01:00, i.e. moved forward by the hour
    ["INC0010232", "C-1002", "2024-03-31 01:30:00", "", "inquiry", "low", ""],
    ["INC0010233", "C-1003", "2024-04-02 07:00:00", "2024-04-02 07:20:31", "software", "critical", ""],
    # closed without a resolution time: dated by its closing
    ["INC0010238", "C-1004", "2024-06-15 08:00:00", "2024-06-16 16:00:00", "software", "low", ""],
    # 02:30 happened twice in Berlin: the first, summer-time one (+02:00); 03:15 is winter time again
    ["INC0010236", "C-1001", "2024-10-27 00:30:00", "2024-10-27 02:15:00", "hardware", "normal", ""],
]


def servicenow_in_berlin():
    mapping = load_mapping(mapping_path("servicenow"))
    return mapping.model_copy(update={"reader": mapping.reader.model_copy(update={"timezone": "Europe/Berlin"})})


def import_incidents(files, out_dir) -> dict:
    return run_import(servicenow_in_berlin(), files, out_dir, CUSTOMERS)


def churn_import(*args: str):
    return CliRunner().invoke(app, ["import", *map(str, args)])


@pytest.fixture(scope="module")
def incidents_import(tmp_path_factory):
    out = tmp_path_factory.mktemp("servicenow")
    return import_incidents([INCIDENTS], out), out


def test_incidents_are_linked_by_email_with_times_in_utc(incidents_import):
    report, out = incidents_import
    assert written_tickets(out) == INCIDENTS_IN_UTC
    assert report["rows_read"] == 9 and report["records"] == 9
    assert report["matched"] == 5 and report["written"] == {"support_tickets": 5}
    assert report["skipped"] == 1 and report["skipped_by_reason"] == {"status canceled": 1}
    assert report["unmatched"] == 3 and report["unmatched_by_reason"] == {
        "email not in customers": 1,
        "email shared by several customers": 1,
        "no email to identify the customer": 1,
    }


def test_canceled_and_unlinked_incidents_are_set_aside_with_the_reason(incidents_import):
    _, out = incidents_import
    aside = set_aside(out, "servicenow")
    assert aside[["source_row", "outcome", "reason", "ticket_id", "opened_at"]].values.tolist() == [
        ["4", "skipped", "status canceled", "INC0010234", "2024-04-03 09:12:13"],
        ["5", "unmatched", "no email to identify the customer", "INC0010235", "2024-04-04 06:30:00"],
        ["7", "unmatched", "email not in customers", "INC0010237", "2024-12-01 22:30:00"],
        # Jo and Sam Park share one address (in two spellings): the incident goes to neither
        ["9", "unmatched", "email shared by several customers", "INC0010239", "2024-07-01 07:00:00"],
    ]


def test_imported_incidents_pass_the_data_contract(incidents_import):
    _, out = incidents_import
    with contract_tables(CUSTOMERS, out, RUN_AT) as tables:
        assert tables.row_counts == {"customers": 6, "support_tickets": 5}
        assert tables.quarantined == {"support_tickets": 0}
        per_customer = tables.query("SELECT customer_id, count(*) AS tickets FROM support_tickets GROUP BY 1 ORDER BY 1")
        # the two Anna Bergs stay two customers
        assert per_customer.values.tolist() == [["C-1001", 2], ["C-1002", 1], ["C-1003", 1], ["C-1004", 1]]


def test_an_export_with_labels_as_headers_is_read_the_same(tmp_path, incidents_import):
    report, out = incidents_import
    labelled = import_incidents([SERVICENOW / "incident_labels.csv"], tmp_path)

    assert (tmp_path / "support_tickets.csv").read_bytes() == (out / "support_tickets.csv").read_bytes()
    counts = ("rows_read", "matched", "unmatched_by_reason", "skipped_by_reason", "written")
    assert {k: labelled[k] for k in counts} == {k: report[k] for k in counts}


def test_a_day_first_personal_format_is_read_day_first(tmp_path):
    report = import_incidents([SERVICENOW / "incident_day_first.csv"], tmp_path)

    assert written_tickets(tmp_path) == [
        ["INC0010302", "C-1002", "2024-02-05 07:15:30", "", "software", "high", ""],
        # 31.03 14:05 is already summer time (+02:00)
        ["INC0010301", "C-1001", "2024-03-31 12:05:00", "2024-04-02 07:00:00", "inquiry", "normal", ""],
        # 12 November, not 11 December
        ["INC0010303", "C-1003", "2024-11-12 16:45:00", "2024-11-13 07:00:00", "network", "low", ""],
    ]
    assert report["rows_read"] == 3 and report["matched"] == 3
    assert report["unmatched"] == 0 and report["skipped"] == 0


def test_the_command_line_takes_the_exporting_users_zone(tmp_path):
    done = churn_import("servicenow", INCIDENTS, "--out", tmp_path, "--customers", CUSTOMERS,
                        "--timezone", "Europe/Berlin")

    assert done.exit_code == 0, done.output
    assert written_tickets(tmp_path) == INCIDENTS_IN_UTC


def test_an_unknown_zone_is_a_usage_error(tmp_path):
    done = churn_import("servicenow", INCIDENTS, "--out", tmp_path, "--customers", CUSTOMERS,
                        "--timezone", "Europe/Berlim")

    assert done.exit_code == 2
    assert "'Europe/Berlim' is not a time zone name" in done.output
    assert not (tmp_path / "support_tickets.csv").exists()


def test_an_export_without_the_callers_email_names_the_column(tmp_path):
    export = tmp_path / "incident_no_email.csv"
    export.write_text('"number","opened_at","caller_id","priority","state"\n'
                      '"INC0010401","2024-05-06 10:00:00","Anna Berg","2 - High","New"\n', encoding="utf-8")

    with pytest.raises(DataError, match=r"incident_no_email\.csv lacks .* \[missing column\]: email \(looked for "
                                        r"'caller_id\.email'"):
        import_incidents([export], tmp_path / "out")
    assert not (tmp_path / "out" / "support_tickets.csv").exists()


def test_an_unparseable_opening_time_names_the_column_rule_and_rows(tmp_path):
    export = tmp_path / "incident_bad_dates.csv"
    export.write_text('"number","opened_at","caller_id.email","state"\n'
                      '"INC0010501","2024-05-06 10:00:00","anna@example.com","New"\n'
                      '"INC0010502","2024-02-30 10:00:00","anna@example.com","New"\n'
                      '"INC0010503","05/06/2024 10:00:00","anna@example.com","New"\n', encoding="utf-8")

    # 30 February is no date; a slashed date could be day or month first, so it is not guessed
    with pytest.raises(DataError, match=r"'opened_at' \(field opened_at\) \[not a time in the formats '%Y-%m-%d "
                                        r"%H:%M:%S' or .*\]: 2 row\(s\); e\.g\. incident_bad_dates\.csv row 2: "
                                        r"'2024-02-30 10:00:00'; incident_bad_dates\.csv row 3: '05/06/2024 10:00:00'"):
        import_incidents([export], tmp_path / "out")
    assert not (tmp_path / "out" / "support_tickets.csv").exists()


def test_a_semicolon_file_read_with_a_comma_mapping_points_at_the_delimiter(tmp_path):
    mapping = yaml.safe_load(mapping_path("servicenow").read_text(encoding="utf-8"))
    mapping["reader"]["delimiter"] = ","
    edited = tmp_path / "servicenow-comma.yaml"
    edited.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    export = tmp_path / "incident_semicolons.csv"
    export.write_text('"number";"opened_at";"caller_id.email";"state"\n'
                      '"INC0010601";"2024-05-06 10:00:00";"anna@example.com";"New"\n', encoding="utf-8")

    done = churn_import(export, "--source-config", edited, "--out", tmp_path / "out", "--customers", CUSTOMERS)

    assert done.exit_code == 3
    assert "Traceback" not in done.output
    assert "incident_semicolons.csv lacks the column(s)" in done.output and "[missing column]" in done.output
    assert "is the delimiter wrong (reader.delimiter)?" in done.output
    assert not (tmp_path / "out" / "support_tickets.csv").exists()
