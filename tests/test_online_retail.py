"""The whole pipeline on real, messy data: the Online Retail sample shipped in tests/data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]


def test_train_and_score_on_online_retail(tmp_path):
    cfg = yaml.safe_load((ROOT / "configs/online_retail.yaml").read_text())
    cfg["data"]["path"] = str(ROOT / cfg["data"]["path"])  # relative paths belong to the config's folder
    cfg["data"]["quarantine_dir"] = str(tmp_path / "quarantine")
    cfg["tracking"] |= {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "artifact_dir": str(tmp_path / "artifacts")}
    cfg["model"]["tuned_params_path"] = str(tmp_path / "tuned.yaml")
    cfg["scoring"]["output_dir"] = str(tmp_path / "at_risk")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    runner = CliRunner()

    trained = runner.invoke(app, ["train", "--config", str(config)])
    assert trained.exit_code == 0, trained.output
    # Four zero-amount invoices break a soft rule: set aside, counted, visible.
    quarantined = pd.read_csv(tmp_path / "quarantine" / "transactions.csv")
    assert len(quarantined) == 4 and set(quarantined["quarantine_reason"]) == {"amount is zero"}

    scored = runner.invoke(app, ["score", "--config", str(config), "--as-of", "2011-12-10"])
    assert scored.exit_code == 0, scored.output
    at_risk = pd.read_csv(tmp_path / "at_risk" / "2011-12-10" / "at_risk.csv", dtype={"customer_id": str})
    assert len(at_risk) > 4000 and at_risk["country"].notna().all()
    manifest = (tmp_path / "at_risk" / "2011-12-10" / "manifest.json").read_text()
    assert json.loads(manifest)["reason_contradictions"] == 0  # every reason agrees with its customer's features
    assert "bgnbd_gamma_gamma_clv (BG/NBD x Gamma-Gamma expected revenue within the CLV horizon) has shifted since training" in manifest  # the Christmas peak, reported as a warning
