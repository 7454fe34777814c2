"""The nightly job's behaviour: output options, dry runs, the lock, and atomic publishing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.at_risk import publish
from pipeline.config import load_config
from pipeline.errors import RunLockedError
from pipeline.files import run_lock
from pipeline.score import run_scoring
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, write_config

AS_OF = dt.date(2026, 1, 1)


def scoring_setup(demo_run: Path, folder: Path, **scoring):
    """The demo run's data and models, with another output folder and scoring options."""
    config = write_config(folder, data={"path": str(demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(folder / "out"), **scoring})
    cfg = load_config(config)
    return cfg, load_tables(cfg.data.path, RUN_AT, None)


def test_german_excel_csv_reads_back_identically(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path, csv={"delimiter": ";", "decimal": ",", "excel_bom": True})
    run_scoring(tables, cfg, AS_OF)
    raw = (tmp_path / "out" / "2026-01-01" / "at_risk.csv").read_bytes()
    assert raw.startswith("\ufeff".encode()) and b";" in raw.splitlines()[0]
    german = pd.read_csv(tmp_path / "out" / "2026-01-01" / "at_risk.csv", sep=";", decimal=",",
                         encoding="utf-8-sig", dtype={"customer_id": str})
    default = pd.read_csv(demo_run / "at_risk" / "2026-01-01" / "at_risk.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(german, default)
    assert {"Müller", "\n"} & set("".join(german["name"])) or german["name"].str.contains("ü").any()


def test_names_with_commas_quotes_and_umlauts_survive_a_round_trip(demo_run):
    listing = demo_run / "at_risk" / "2026-01-01"
    from_csv = pd.read_csv(listing / "at_risk.csv", dtype={"customer_id": str})
    from_parquet = pd.read_parquet(listing / "at_risk.parquet")
    assert from_csv["name"].tolist() == from_parquet["name"].tolist()
    tricky = from_csv["name"][from_csv["name"].str.contains(r"[,\"'äöüéè]", regex=True)]
    assert len(tricky) > 10


def test_top_n_and_selected_tiers(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path, top_n=25, only_tiers=["high"])
    manifest = run_scoring(tables, cfg, AS_OF)
    listed = pd.read_csv(tmp_path / "out" / "2026-01-01" / "at_risk.csv")
    assert len(listed) == 25 == manifest["customers_listed"] and set(listed["risk_tier"]) == {"high"}
    assert manifest["customers_scored"] > 25


def test_dry_run_writes_nothing(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path)
    manifest = run_scoring(tables, cfg, AS_OF, dry_run=True)
    assert manifest["customers_scored"] > 0 and not (tmp_path / "out").exists()


def test_a_failed_run_leaves_the_previous_list_untouched(demo_run, tmp_path, monkeypatch):
    cfg, tables = scoring_setup(demo_run, tmp_path)
    run_scoring(tables, cfg, AS_OF)
    listing = tmp_path / "out" / "2026-01-01"
    before = {p.name: p.read_bytes() for p in listing.iterdir()}

    def crash_midway(at_risk, folder, scoring_cfg):
        (folder / "at_risk.csv").write_text("customer_id\nhalf-writ")
        raise OSError("disk full")

    monkeypatch.setattr(publish, "write_at_risk_files", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        run_scoring(tables, cfg, AS_OF)
    assert {p.name: p.read_bytes() for p in listing.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2026-01-01"]  # no staging, no lock left


def test_a_live_lock_stops_a_second_run_and_a_stale_one_is_taken_over(tmp_path):
    with run_lock(tmp_path), pytest.raises(RunLockedError, match="Another scoring run holds"), run_lock(tmp_path):
        pass
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead_pid, "host": os.uname().nodename}))
    with run_lock(tmp_path):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()
