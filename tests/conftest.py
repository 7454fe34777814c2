"""Shared fixtures: a tiny hand-made world written as real CSV files, and a run moment."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
RUN_AT = dt.datetime(2026, 1, 15, 12, 0)


def tiny_world() -> dict[str, pd.DataFrame]:
    """Three customers over 2025: a regular buyer (c1), a one-time buyer with a refund and
    an open complaint (c2), and a lapsed detractor (c3)."""
    customers = pd.DataFrame({
        "customer_id": ["c1", "c2", "c3"],
        "signup_at": ["2024-12-01", "2025-03-01", "2024-06-01"],
        "country": ["DE", "FR", "DE"],
        "acquisition_channel": ["organic", "paid_search", "referral"],
        "is_loyalty_member": ["true", "false", "false"],
        "email": ["a@example.org", "b@example.org", "c@example.org"],
        "name": ["Müller, Jürgen", 'Anna "Nan" Smith', "Zoë\nMultiline"],
    })
    transactions = pd.DataFrame({
        "transaction_id": [f"t{i}" for i in range(1, 10)],
        "customer_id": ["c1", "c1", "c1", "c1", "c2", "c2", "c3", "c3", "c1"],
        "purchased_at": ["2025-01-10 10:00", "2025-03-10 09:00", "2025-05-10 18:00", "2025-07-01 00:00",
                         "2025-04-02 12:00", "2025-04-20 12:00", "2024-08-01 08:00", "2025-01-15 08:00",
                         "2025-09-01 10:00"],
        "amount": [50.0, 70.0, 30.0, 40.0, 120.0, -20.0, 80.0, 60.0, 55.0],
        "category": ["books", "toys", "books", "garden", "toys", None, "books", "books", "toys"],
        "discount_amount": [0.0, 10.0, 0.0, 5.0, 0.0, 0.0, 20.0, 0.0, 0.0],
        "sales_channel": ["web", "app", "web", "store", "web", "web", "store", "web", "app"],
    })
    interactions = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c3", "c1"],
        "occurred_at": ["2025-06-01 10:00", "2025-06-20 10:00", "2025-04-05 11:00", "2025-01-20 09:00",
                        "2025-07-01 00:00"],
        "channel": ["email", "web", "app", "email", "web"],
        "event_type": ["open", "visit", "login", "click", "visit"],
    })
    support_tickets = pd.DataFrame({
        "ticket_id": ["k1", "k2", "k3"],
        "customer_id": ["c2", "c3", "c1"],
        "opened_at": ["2025-05-01 09:00", "2025-02-01 09:00", "2025-06-10 09:00"],
        "resolved_at": [None, "2025-02-20 09:00", "2025-06-12 09:00"],
        "category": ["complaint", "delivery", "billing"],
        "priority": ["high", "normal", "low"],
        "satisfaction": [None, "2", "5"],
        "effort_score": [None, "6", "2"],
    })
    surveys = pd.DataFrame({
        "customer_id": ["c3", "c3", "c1"],
        "responded_at": ["2025-01-01 10:00", "2025-03-01 10:00", "2025-06-15 10:00"],
        "nps_score": [7, 3, 10],
    })
    subscriptions = pd.DataFrame({
        "subscription_id": ["s1", "s2"],
        "customer_id": ["c1", "c1"],
        "plan": ["plus", "basic"],
        "started_at": ["2025-01-01", "2025-05-01"],
        "ended_at": ["2025-05-01", None],
        "monthly_fee": [20.0, 10.0],
        "cancel_reason": ["downgrade", None],
    })
    return {"customers": customers, "transactions": transactions, "interactions": interactions,
            "support_tickets": support_tickets, "surveys": surveys, "subscriptions": subscriptions}


def write_world(folder: Path, tables: dict[str, pd.DataFrame]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


@pytest.fixture
def tiny_dir(tmp_path: Path) -> Path:
    return write_world(tmp_path / "data", tiny_world())


def write_config(folder: Path, **overrides) -> Path:
    cfg = {
        "data": {"path": str(folder / "data"), "quarantine_dir": str(folder / "quarantine")},
        "training": {"cutoffs": 4},
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_dir": str(folder / "artifacts")},
        "model": {"tuned_params_path": str(folder / "tuned.yaml")},
        "scoring": {"output_dir": str(folder / "at_risk"), "passthrough_columns": ["email", "name"]},
        "demo": {"customers": 3000, "seed": 3},
    }
    for section, values in overrides.items():
        cfg.setdefault(section, {}).update(values)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A demo world of 3,000 customers with both models trained, registered as champions,
    and an at-risk list written as of 2026-01-01 (shared by the whole test session)."""
    from pipeline.cli import app

    folder = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(app, ["demo", "--config", str(write_config(folder))])
    assert result.exit_code == 0, result.output
    return folder


def hold_lock_in_child(folder: Path) -> subprocess.Popen:
    """A real second process that takes the run lock of folder and sleeps while holding it."""
    code = ("import sys, time; from pathlib import Path; from pipeline.files import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(120)")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout.readline().strip() == "locked"
    return child
