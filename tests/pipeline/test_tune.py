"""`churn tune` that can be trusted when stopped: real Optuna studies on SQLite, a real
process killed mid-trial, and a real `churn tune` interrupted with Ctrl-C (SIGINT).

- a resumed study continues its sampler instead of replaying its first suggestions;
- a trial left RUNNING by a killed process is failed when the study resumes;
- Ctrl-C finishes the current trial, writes the best parameters so far, ends the MLflow run
  KILLED and exits 130 with one line, no traceback; SIGTERM stops at once, the same way."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient

from models.tuning import suggest_params
from pipeline.tune import run_study
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
State = optuna.trial.TrialState


def quick_objective(trial: optuna.Trial, data, seed: int) -> float:
    return sum(suggest_params(trial).values())


def params_of(storage: str, name: str) -> list[dict]:
    return [t.params for t in optuna.load_study(study_name=name, storage=storage).trials]


def test_a_resumed_study_does_not_replay_its_first_suggestions(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_study("churn-x", "maximize", quick_objective, None, 4, None, storage, seed=42)
    run_study("churn-x", "maximize", quick_objective, None, 4, None, storage, seed=42)  # a new session resumes
    first, resumed = params_of(storage, "churn-x")[:4], params_of(storage, "churn-x")[4:]
    assert len(resumed) == 4 and not [p for p in resumed if p in first]
    # A new study with the same seed still starts the same way (reproducible).
    run_study("churn-y", "maximize", quick_objective, None, 4, None, storage, seed=42)
    assert params_of(storage, "churn-y") == first


BLOCKING_TRIAL = """
import sys, time
from pipeline.tune import run_study
def blocks(trial, data, seed):
    trial.suggest_float("x", 0, 1)
    time.sleep(600)
run_study("churn-k", "maximize", blocks, None, 1, None, sys.argv[1], seed=1)
"""


def test_a_trial_left_running_by_a_killed_process_is_failed_on_resume(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    child = subprocess.Popen([sys.executable, "-c", BLOCKING_TRIAL, storage], cwd=ROOT,
                             env=os.environ | {"PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            try:
                if optuna.load_study(study_name="churn-k", storage=storage).get_trials(states=(State.RUNNING,)):
                    break
            except KeyError:  # the study is not created yet
                pass
            time.sleep(0.1)
    finally:
        child.kill()
        child.wait()
    assert [t.state for t in optuna.load_study(study_name="churn-k", storage=storage).trials] == [State.RUNNING]
    study = run_study("churn-k", "maximize", quick_objective, None, 1, None, storage, seed=1)
    assert [t.state for t in study.trials] == [State.FAIL, State.COMPLETE]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from pipeline.demo.world import generate_world

    folder = tmp_path_factory.mktemp("tune")
    generate_world(folder / "data", n_customers=600, seed=3)
    return folder


def completed_churn_trials(db: Path) -> int:
    import sqlite3

    if not db.is_file():
        return 0
    try:
        with closing(sqlite3.connect(db, timeout=5)) as con:
            return con.execute("SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE "
                               "study_name LIKE 'churn-%' AND state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # the tables are not created yet
        return 0


def tune_until(folder: Path, data: Path, trials_done: int, signum: int) -> tuple[int, str]:
    """`churn tune` in a real process, sent `signum` once `trials_done` churn trials are complete."""
    config = write_config(folder, data={"path": str(data)})
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | {"PYTHONPATH": str(ROOT)}
    with (folder / "tune.log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "tune", "--trials", "500", "--storage",
                                  f"sqlite:///{folder / 'optuna.db'}", "--config", str(config)], cwd=ROOT, env=env,
                                 stdout=log, stderr=log)
        deadline = time.monotonic() + 240
        while completed_churn_trials(folder / "optuna.db") < trials_done and child.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signum)
        child.wait(timeout=180)
    return child.returncode, (folder / "tune.log").read_text()


def churn_study(folder: Path) -> optuna.Study:
    storage = f"sqlite:///{folder / 'optuna.db'}"
    [name] = [s.study_name for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith("churn-")]
    return optuna.load_study(study_name=name, storage=storage)


def tuning_run(folder: Path):
    store = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    [run] = client.search_runs([client.get_experiment_by_name("churn-pipeline").experiment_id])
    return run


def test_ctrl_c_stops_after_the_trial_writes_the_best_so_far_and_ends_cleanly(world, tmp_path):
    code, err = tune_until(tmp_path, world / "data", 2, signal.SIGINT)
    assert code == 130, err
    assert "Traceback" not in err
    assert "Tuning stopped by SIGINT; the best parameters so far (churn)" in err.strip().splitlines()[-1]
    churn = churn_study(tmp_path)
    assert len(churn.trials) < 500 and {t.state for t in churn.trials} <= {State.COMPLETE, State.PRUNED}
    written = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert written["churn"]["learning_rate"] == churn.best_params["learning_rate"]
    run = tuning_run(tmp_path)
    assert run.info.status == "KILLED" and run.data.params["churn_learning_rate"]


def test_sigterm_stops_the_trial_at_once_and_still_keeps_the_best_so_far(world, tmp_path):
    code, err = tune_until(tmp_path, world / "data", 2, signal.SIGTERM)
    assert code == 143, err
    assert "Traceback" not in err and "Tuning stopped by SIGTERM" in err.strip().splitlines()[-1]
    churn = churn_study(tmp_path)
    assert State.RUNNING not in {t.state for t in churn.trials}  # the trial it stopped is FAIL (or had finished)
    written = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert written["churn"]["learning_rate"] == churn.best_params["learning_rate"]
    assert tuning_run(tmp_path).info.status == "KILLED"
