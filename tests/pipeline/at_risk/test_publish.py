"""Publishing: `latest` shows the newest dated list, moves only forward, is swapped in one
step, and a `latest` the pipeline did not make is refused (exit 7) and left as it was; and
`churn score` with CRM exports publishes their files inside the dated folder."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.at_risk.publish import publish_at_risk_list
from pipeline.cli import app
from pipeline.config import parse_config
from pipeline.errors import OutputError
from tests.conftest import write_config
from tests.pipeline.at_risk.test_crm_exports import contacts_of, listed

JAN, FEB, DEC = dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2025, 12, 1)


def publish(out: Path, as_of: dt.date) -> Path:
    """A real publish of a small list with HubSpot files (no models: the summary has no drift chart)."""
    at_risk = listed(as_of=as_of)
    cfg = parse_config({"scoring": {"output_dir": str(out), "exports": ["hubspot"]}}).scoring
    manifest = {"as_of_date": as_of.isoformat(), "currency": "EUR", "models": {}, "customers_scored": len(at_risk),
                "customers_per_tier": at_risk["risk_tier"].value_counts().to_dict(),
                "total_value_at_risk": float(at_risk["value_at_risk"].sum())}
    return publish_at_risk_list(at_risk, at_risk, manifest, object(), cfg, contacts_of(at_risk))


def test_latest_shows_the_newest_list_and_an_earlier_date_does_not_move_it_back(tmp_path):
    out = tmp_path / "out"
    publish(out, JAN)
    latest = out / "latest"
    assert latest.is_symlink() and os.readlink(latest) == "2026-01-01"  # relative: the folder may move
    hubspot = "crm/hubspot/hubspot_contacts_001.csv"
    assert (latest / hubspot).read_bytes() == (out / "2026-01-01" / hubspot).read_bytes()
    publish(out, FEB)
    assert os.readlink(latest) == "2026-02-01"
    assert json.loads((latest / "manifest.json").read_text())["as_of_date"] == "2026-02-01"
    publish(out, DEC)  # a backfill of an earlier night
    publish(out, JAN)  # a rerun of one
    assert os.readlink(latest) == "2026-02-01" and (out / "2025-12-01" / hubspot).is_file()
    assert sorted(p.name for p in out.iterdir()) == [".lock", "2025-12-01", "2026-01-01", "2026-02-01", "latest"]


def test_a_latest_whose_list_is_gone_moves_to_the_list_published(tmp_path):
    """The newest dated folder was deleted (by hand, or a retention job): `latest` points at
    nothing, and the next publish points it at its own list, older or not."""
    out = tmp_path / "out"
    publish(out, FEB)
    (out / "2026-02-01").rename(tmp_path / "archived")
    publish(out, JAN)
    assert os.readlink(out / "latest") == "2026-01-01" and (out / "latest" / "manifest.json").is_file()


def test_a_staging_link_left_by_a_crashed_run_is_removed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = out / f".latest.staging-{int(gone.stdout)}-link"
    leftover.symlink_to("2025-11-01")
    publish(out, JAN)
    assert not os.path.lexists(leftover) and os.readlink(out / "latest") == "2026-01-01"


def foreign_folder(latest: Path) -> None:
    latest.mkdir()
    (latest / "at_risk.csv").write_text("my own copy")


def foreign_file(latest: Path) -> None:
    latest.write_text("notes")


def foreign_link(latest: Path) -> None:
    (latest.parent / "elsewhere").mkdir()
    latest.symlink_to("elsewhere")


@pytest.mark.parametrize(("make", "phrase"), [(foreign_folder, "is a folder the pipeline did not make"),
                                              (foreign_file, "is a file the pipeline did not make"),
                                              (foreign_link, "is a symbolic link to elsewhere")])
def test_a_latest_the_pipeline_did_not_make_is_refused_and_left_as_it_was(tmp_path, make, phrase):
    out = tmp_path / "out"
    out.mkdir()
    latest = out / "latest"
    make(latest)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OutputError, match=phrase) as refused:
        publish(out, JAN)
    assert refused.value.exit_code == 7 and "nothing was written" in str(refused.value)
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, ".lock"])  # no list, no staging left
    if latest.is_symlink():
        assert os.readlink(latest) == "elsewhere"
    elif latest.is_dir():
        assert (latest / "at_risk.csv").read_text() == "my own copy"
    else:
        assert latest.read_text() == "notes"


def test_churn_score_with_exports_publishes_the_crm_files_inside_the_dated_list(demo_run, tmp_path):
    out = tmp_path / "out"
    config = write_config(tmp_path, data={"path": str(demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(out), "exports": ["hubspot", "salesforce", "zoho"]})
    result = CliRunner().invoke(app, ["score", "--config", str(config), "--as-of", "2026-01-01"])
    assert result.exit_code == 0, result.output
    listing = out / "2026-01-01"
    manifest = json.loads((listing / "manifest.json").read_text())
    for crm in ("hubspot", "salesforce", "zoho"):
        export = manifest["crm_exports"][crm]
        assert export["rows_written"] + sum(export["rows_left_out"].values()) == manifest["customers_listed"]
        assert export["rows_written"] > 500 and sum(entry["rows"] for entry in export["files"].values()) == (
            export["rows_written"])
        for name in export["files"]:
            first = (listing / name).read_text(encoding="utf-8").splitlines()[1].split(",")
            assert "@" in first[0] and first[1] and first[2]  # the demo's names, split in two
    zoho_files = manifest["crm_exports"]["zoho"]["files"]
    assert len(zoho_files) == -(-manifest["crm_exports"]["zoho"]["rows_written"] // 10_000)
    assert os.readlink(out / "latest") == "2026-01-01"
    assert sorted(p.name for p in (listing / "crm").iterdir()) == ["hubspot", "salesforce", "zoho"]
