"""`churn demo` end to end on a small generated world, through the real CLI, with a real
SQLite MLflow store and real files in a temporary folder."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from pipeline.at_risk.listing import AT_RISK_COLUMNS
from pipeline.cli import app
from tests.conftest import write_config

runner = CliRunner()


def demo_store(demo_run):
    """A client of the demo run's store, registry included: without an explicit registry URI,
    MLflow would use whatever registry an earlier test in this process pointed it at."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{demo_run / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_demo_writes_a_real_at_risk_list(demo_run):
    listing = demo_run / "at_risk" / "2026-01-01"
    at_risk = pd.read_csv(listing / "at_risk.csv", dtype={"customer_id": str})
    assert list(at_risk.columns) == AT_RISK_COLUMNS + ["email", "name"]
    assert len(at_risk) > 500 and at_risk["customer_id"].is_unique
    assert at_risk["churn_probability"].between(0, 1).all()
    assert at_risk["value_at_risk"].is_monotonic_decreasing
    assert (at_risk["rank"] == range(1, len(at_risk) + 1)).all()
    assert set(at_risk["risk_tier"]) <= {"high", "medium", "low"}
    high = at_risk[at_risk["risk_tier"] == "high"]
    assert (high["churn_probability"] >= 0.5).all() and high["top_reasons"].str.len().gt(0).all()
    manifest = json.loads((listing / "manifest.json").read_text())
    assert manifest["customers_scored"] == len(at_risk)
    assert sum(manifest["customers_per_tier"].values()) == len(at_risk)
    assert manifest["outputs"]["at_risk.csv"]["rows"] == len(at_risk)
    assert manifest["reason_contradictions"] == 0  # every reason agrees with its customer's features
    assert {"churn_probability", "days_since_last_purchase"} <= set(manifest["drift_psi"])
    assert all(0 <= psi < 0.5 for psi in manifest["drift_psi"].values())
    summary = (listing / "summary.html").read_text()
    assert summary.count('<img src="data:image/png;base64,') == 4 and "http" not in summary


def test_scoring_again_gives_the_same_bytes(demo_run):
    config = str(demo_run / "config.yaml")
    listing = demo_run / "at_risk" / "2026-01-01"
    before = (listing / "at_risk.csv").read_bytes()
    result = runner.invoke(app, ["score", "--config", config, "--as-of", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert (listing / "at_risk.csv").read_bytes() == before
    # nothing half-written is left beside the list; .lock is the run lock (an OS lock file stays)
    assert not [p for p in (demo_run / "at_risk").iterdir() if p.name.startswith(".") and p.name != ".lock"]


def test_retraining_keeps_the_champion_unless_beaten(demo_run):
    config = str(demo_run / "config.yaml")
    result = runner.invoke(app, ["train", "--config", config])
    assert result.exit_code == 0, result.output
    client = demo_store(demo_run)
    versions = client.search_model_versions("name='churn'")
    assert len(versions) == 2  # earlier versions are kept
    # Same data, config and seed give the same model, which does not beat itself.
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"


def test_scoring_without_a_champion_says_to_train_first(tmp_path, demo_run):
    config = write_config(tmp_path, data={"path": str(demo_run / "data")})
    result = runner.invoke(app, ["score", "--config", str(config), "--as-of", "2026-01-01"])
    assert result.exit_code == 4
    assert "make train" in result.output and "Traceback" not in result.output


def test_bad_config_and_bad_data_fail_without_traceback(tmp_path, demo_run):
    bad = tmp_path / "bad.yaml"
    bad.write_text("churn: {horizon_days: -1}\n")
    result = runner.invoke(app, ["validate", "--config", str(bad)])
    assert result.exit_code == 2 and "churn.horizon_days" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["validate", "--config", str(demo_run / "config.yaml"), "--data", str(tmp_path)])
    assert result.exit_code == 3 and "Required table(s) customers, transactions not found" in result.output


def test_kpi_report_backtests_the_champion_against_what_happened(demo_run):
    out = demo_run / "report"
    result = runner.invoke(app, ["report", "--config", str(demo_run / "config.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    backtest = pd.read_csv(out / "backtest.csv")
    assert len(backtest) == 6 and backtest["cutoff_date"].is_monotonic_increasing
    # the champion is refit on the freshest complete cutoffs: the latest backtested ones
    assert set(backtest["role"]) <= {"trained on", "not trained on"}
    assert backtest["role"].iloc[-1] == "trained on"
    assert backtest["customers"].gt(100).all()
    # Calibrated probabilities: on average the predicted churn rate is close to the realised one.
    assert (backtest["predicted_churn_rate"] - backtest["realised_churn_rate"]).abs().max() < 0.1
    assert backtest["realised_churn_rate"].between(0.05, 0.95).all()
    page = (out / "kpi_report.html").read_text()
    assert "Model backtest" in page and "Predicted vs realised churn rate" in page
    assert "predicted churn rate" in page
    assert "Model: predicted revenue per active customer, next " in page  # beside the practice formula
    # what to expect: the training run's walk-forward backtest, one row per origin and model
    forward = pd.read_csv(out / "backtest_forward.csv")
    assert list(forward.groupby("model").size()) == [3, 3]
    assert forward["roc_auc"].dropna().between(0.85, 1).all() and forward["spearman"].dropna().gt(0.5).all()
    assert "Walk-forward backtest (forward figures)" in page and "What to expect from tonight" in page


def test_reasons_come_from_fast_attributions_that_agree_with_exact_shap(demo_run):
    client = demo_store(demo_run)
    version = client.get_model_version_by_alias("churn", "champion")
    metrics = client.get_run(version.run_id).data.metrics
    # the strongest reason family is the same as exact SHAP's for most validation customers
    assert metrics["churn_reason_agreement_with_shap"] >= 0.8


def test_a_training_run_reads_well_in_the_mlflow_ui(demo_run):
    """Named by what it trained, its parameters and input recorded, each model with only its
    own metrics and a description, and an experiment that opens on its runs."""
    client = demo_store(demo_run)
    experiment = client.get_experiment_by_name("churn-pipeline")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    churn = client.get_model_version_by_alias("churn", "champion")
    clv = client.get_model_version_by_alias("clv", "champion")
    child = client.get_run(churn.run_id)
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])
    assert parent.info.run_name.startswith("config | ") and "labels to 20" in parent.info.run_name
    params = parent.data.params
    assert params["churn_horizon_days"] == "90" and params["backtest_origins"] == "3"
    assert params["churn_candidate"] in ("bgnbd", "logistic", "lightgbm", "blend")
    assert ".." in params["churn_refit_cutoffs"] and params["churn_backtest_origins"].count(",") == 2
    assert [d.dataset.name for d in parent.inputs.dataset_inputs] == ["demo0/data training frame"]
    history = client.get_metric_history(churn.run_id, "churn_backtest_roc_auc")
    assert [m.step for m in history] == [0, 1, 2]  # one point per backtest origin
    for version, own, other in ((churn, "churn_", "clv_"), (clv, "clv_", "churn_")):
        model_id = version.model_id or version.source.removeprefix("models:/")
        keys = {m.key for m in client.get_logged_model(model_id).metrics}
        assert keys and all(k.startswith(own) for k in keys) and not any(k.startswith(other) for k in keys)
        assert "candidate" in version.description and "Walk-forward backtest over 3 origins" in version.description
