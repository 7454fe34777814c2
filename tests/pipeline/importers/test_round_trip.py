"""The demo world written out as the exports of six systems, imported back with `churn
import`, then validated, trained and scored: the imported folder is a working data folder,
and it holds the world's purchases, tickets, engagement and answers."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.demo.world import generate_world
from tests.conftest import write_config
from tests.pipeline.importers import vendor_exports as exports


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """(world tables, the imported folder, the reports) for a 500-customer demo world."""
    root = tmp_path_factory.mktemp("round_trip")
    generate_world(root / "world", n_customers=500, seed=11, fmt="csv")
    world = exports.read_world(root / "world")
    files = root / "exports"
    files.mkdir()
    steps = [
        ("hubspot-contacts", exports.write_hubspot_contacts(world["customers"], files / "contacts.csv")),
        ("shopify", exports.write_shopify_csv(exports.shopify_orders(world["customers"], world["transactions"]),
                                              files / "orders_export.csv")),
        ("zendesk", exports.write_zendesk_json(world["support_tickets"], world["customers"], files / "tickets.json")),
        ("hubspot-email-events", exports.write_hubspot_email_events(world["interactions"], world["customers"],
                                                                    files / "email_events.json")),
        ("ga4", exports.write_ga4_ndjson(world["interactions"], files / "events.ndjson")),
        ("delighted", exports.write_delighted_csv(world["surveys"], world["customers"], files / "responses.csv")),
    ]
    runner = CliRunner()
    for source, path in steps:
        result = runner.invoke(app, ["import", source, str(path), "--out", str(root / "data")])
        assert result.exit_code == 0, result.output
    return world, root


def read(root, table: str) -> pd.DataFrame:
    return pd.read_csv(root / "data" / f"{table}.csv", dtype={"customer_id": str, "transaction_id": str})


def test_the_imported_folder_holds_the_world(imported):
    world, root = imported
    assert read(root, "customers")["customer_id"].tolist() == sorted(world["customers"]["customer_id"])
    bought = world["transactions"][world["transactions"]["amount"] > 0].sort_values(["purchased_at", "customer_id"])
    purchases = read(root, "transactions").query("amount > 0").sort_values(["purchased_at", "customer_id"])
    assert len(purchases) == len(bought)  # the unpaid orders the export adds are left out
    assert purchases["customer_id"].tolist() == bought["customer_id"].tolist()
    assert (pd.to_datetime(purchases["purchased_at"]).to_numpy() == bought["purchased_at"].to_numpy()).all()
    assert purchases["amount"].sum() == pytest.approx(bought["amount"].round(2).sum(), abs=0.01)
    assert len(read(root, "support_tickets")) == len(world["support_tickets"])
    assert len(read(root, "surveys")) == len(world["surveys"])
    engaged = world["interactions"][world["interactions"]["channel"].isin(["email", "web", "app"])]
    interactions = read(root, "interactions")
    assert len(interactions) == len(engaged)
    assert interactions.groupby("channel").size().to_dict() == engaged.groupby("channel").size().to_dict()


def test_the_imported_folder_validates_trains_and_scores(imported, tmp_path):
    _, root = imported
    config = write_config(tmp_path, data={"path": str(root / "data")},
                          scoring={"passthrough_columns": ["email", "first_name", "last_name"]})
    runner = CliRunner()
    for step in (["validate"], ["train"], ["score", "--as-of", "2026-01-01"]):
        result = runner.invoke(app, [*step, "--config", str(config)])
        assert result.exit_code == 0, result.output
    at_risk = pd.read_csv(tmp_path / "at_risk" / "2026-01-01" / "at_risk.csv", dtype=str)
    assert len(at_risk) > 100 and at_risk["email"].str.contains("@").all()
    assert at_risk["first_name"].notna().mean() > 0.9
