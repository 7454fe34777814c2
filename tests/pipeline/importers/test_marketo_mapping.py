"""Another vendor of a kind needs an edited copy of a mapping, not code: a user copies
configs/sources/hubspot-email-events.yaml, edits it for Marketo's Bulk Activity Extract CSV
(activity type ids, ISO times in UTC, leads known by leadId only) and imports it through the
CLI with --source-config. The expected figures are worked out by hand from
samples/marketo/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.importers.mapping import mapping_path
from tests.pipeline.importers.crm_samples import SAMPLES, read_table

ROOT = Path(__file__).resolve().parents[3]
EXTRACT = SAMPLES / "marketo" / "bulk-activity-export-2024-03.csv"
# The team's customers, with the id Marketo knows each one by (the extract holds no email).
CUSTOMERS = """customer_id,signup_at,country,acquisition_channel,is_loyalty_member,email,marketo_lead_id
C-1001,2024-01-05 10:00:00,DE,paid_search,true,anna.berg@example.com,5414087
C-1002,2024-02-11 16:30:00,FR,organic_search,false,marc.roux@example.fr,5414090
C-1003,2024-02-20 09:00:00,DE,referrals,false,t.nguyen@example.org,
"""


def write_marketo_copy(path: Path) -> dict:
    """The user's edits of the HubSpot mapping: the same kind, the extract's columns, its
    activity types (10 = Open Email, 11 = Click Email, any other done *to* the lead), and
    a link from leadId to the customers' Marketo lead ids."""
    mapping = yaml.safe_load(mapping_path("hubspot-email-events").read_text(encoding="utf-8"))
    mapping.update({
        "source": "marketo-email",
        "description": "Marketo Bulk Activity Extract (CSV) -> interactions on the email channel",
        "reader": {"format": "csv", "missing_values": ["null"]},  # the extract writes null in empty cells
        "fields": {
            "lead_id": {"column": "leadId", "type": "id"},
            "occurred_at": {"column": "activityDate", "type": "timestamp", "formats": ["%Y-%m-%dT%H:%M:%S%z"]},
            "event_type": {"column": "activityTypeId"},
            # Marketo flags a mail scanner's open inside the attributes cell's JSON
            "filtered": {"column": "attributes", "key": "Is Bot Activity", "type": "boolean", "required": False},
        },
        "values": {"event_type": {10: "open", 11: "click", "*": None}},
        "link": [{"field": "lead_id", "customers_column": "marketo_lead_id"}],
    })
    path.write_text(yaml.safe_dump(mapping, sort_keys=False), encoding="utf-8")
    return mapping


def test_an_edited_copy_of_the_hubspot_mapping_imports_marketo_activities_through_the_cli(tmp_path):
    config = tmp_path / "marketo-email.yaml"
    mapping = write_marketo_copy(config)
    customers = tmp_path / "crm" / "customers.csv"
    customers.parent.mkdir()
    customers.write_text(CUSTOMERS, encoding="utf-8")
    out = tmp_path / "data"

    result = subprocess.run([sys.executable, "-m", "pipeline.cli", "import", "--source-config", str(config),
                             str(EXTRACT), "--out", str(out), "--customers", str(customers)],
                            capture_output=True, text=True, cwd=ROOT)

    assert result.returncode == 0, result.stderr
    assert mapping["kind"] == "email_events"  # the HubSpot converter, unchanged
    assert "    10: open\n" in config.read_text(encoding="utf-8")  # ids unquoted, as a user writes them
    assert read_table(out / "interactions.csv").values.tolist() == [
        ["C-1001", "2024-03-10 14:07:40", "email", "open"],
        ["C-1001", "2024-03-10 15:05:02", "email", "click"],
        ["C-1002", "2024-03-11 09:30:00", "email", "open"],  # written 2024-03-11T09:30:00+0000
    ]
    report = json.loads((out / "imports" / "marketo-email" / "report.json").read_text(encoding="utf-8"))
    assert report["customers"] == str(customers)
    assert report["rows_read"] == 9 and report["records"] == 9
    assert report["matched"] == 3 and report["written"] == {"interactions": 3}
    assert report["skipped_by_reason"] == {  # send, delivered, bounced, unsubscribed: done to the lead
        **{f"not the customer's engagement: event type {type_id}": 1 for type_id in (6, 7, 8, 9)},
        "made by a machine (filtered by the tool)": 1}  # the scanner's open of row 9
    assert report["unmatched_by_reason"] == {"lead_id not in customers": 1}  # lead 5414555
    assert not (out / "customers.csv").exists()  # the customers stay where they are
