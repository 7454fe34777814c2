"""Behavioural tests of the trained churn model (direction and invariance), and the logged
model reloaded the ways a user would: pyfunc in a fresh process, and `mlflow models predict`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.frame import build_features
from features.population import build_active_spine
from pipeline.config import load_config
from pipeline.tables import load_tables
from tests.conftest import RUN_AT

AS_OF = dt.date(2025, 10, 1)


@pytest.fixture(scope="module")
def scored(demo_run: Path):
    """(the fitted champion churn model, the feature frame of active customers at AS_OF)."""
    cfg = load_config(demo_run / "config.yaml")
    tables = load_tables(cfg.data.path, RUN_AT, None)
    frame = build_features(tables, build_active_spine(tables, [AS_OF], cfg.churn), cfg.features)
    mlflow.set_tracking_uri(cfg.tracking.uri)
    mlflow.set_registry_uri(cfg.tracking.uri)  # an earlier test of this worker may have pointed it elsewhere
    model = mlflow.pyfunc.load_model("models:/churn@champion").unwrap_python_model().model
    return model, frame


def test_more_silence_does_not_lower_risk(scored):
    """The same customers seen 60 days later with nothing new: every recency grows by 60."""
    model, frame = scored
    silent = frame.copy()
    for column in [c for c in frame if c.startswith("days_since_")]:
        silent[column] = silent[column] + 60
    silent["overdue_ratio"] = silent["days_since_last_purchase"] / silent["mean_days_between_purchases"]
    assert model.predict(silent).mean() >= model.predict(frame).mean()


def test_open_tickets_do_not_lower_risk(scored):
    model, frame = scored
    troubled = frame.assign(open_tickets=frame["open_tickets"] + 2, open_complaints=frame["open_complaints"] + 1,
                            days_oldest_open_ticket=frame["days_oldest_open_ticket"].fillna(0) + 20)
    assert model.predict(troubled).mean() >= model.predict(frame).mean()


def test_detractors_are_riskier_than_promoters(scored):
    model, frame = scored
    detractors = frame.assign(nps_last=2.0, nps_class="detractor")
    promoters = frame.assign(nps_last=10.0, nps_class="promoter")
    assert model.predict(detractors).mean() >= model.predict(promoters).mean()


def test_row_order_and_customer_ids_do_not_change_scores(scored):
    model, frame = scored
    reference = pd.Series(model.predict(frame), index=frame["customer_id"])
    shuffled = frame.sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(model.predict(shuffled), reference[shuffled["customer_id"]].to_numpy())
    renamed = frame.assign(customer_id="X" + frame["customer_id"])
    np.testing.assert_array_equal(model.predict(renamed), reference.to_numpy())


def test_logged_model_gives_the_same_probabilities_in_a_fresh_process(scored, demo_run, tmp_path):
    model, frame = scored
    expected = model.predict(frame)
    inputs = tmp_path / "input.csv"
    frame.drop(columns=["customer_id", "cutoff_date"]).to_csv(inputs, index=False)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{demo_run / 'mlflow.db'}"}
    script = (
        "import json, sys, mlflow, pandas as pd\n"
        "model = mlflow.pyfunc.load_model('models:/churn@champion')\n"
        "print(json.dumps(model.predict(pd.read_csv(sys.argv[1])).tolist()))\n"
    )
    fresh = subprocess.run([sys.executable, "-c", script, str(inputs)], env=env, capture_output=True,
                           text=True, check=True)
    np.testing.assert_allclose(json.loads(fresh.stdout.strip().splitlines()[-1]), expected, rtol=1e-9)

    output = tmp_path / "predictions.json"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    subprocess.run([str(mlflow_cli), "models", "predict", "-m", "models:/churn@champion", "-i", str(inputs),
                    "-t", "csv", "-o", str(output), "--env-manager", "local"], env=env, check=True,
                   capture_output=True)
    predictions = json.loads(output.read_text())["predictions"]
    np.testing.assert_allclose(predictions, expected, rtol=1e-9)
