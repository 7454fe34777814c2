"""Trust in the tracking store, with the real thing each time: MLflow on SQLite, real `churn`
processes (killed for real), a local HTTP server that accepts and never answers, and real
corrupt, truncated and locked SQLite files.

- credentials in the tracking URI reach no log line, error, artifact or output file;
- an unreachable server, a corrupt or a locked store is one paragraph, in time;
- both champions come from one run, even when `churn train` is killed between the aliases;
- every run ends FINISHED, FAILED or KILLED; one left RUNNING by SIGKILL is failed next time;
- promotion needs min_gain or a clear interval, and (churn) no worse calibration."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import tracking
from pipeline.config import Config, PromotionConfig, TrackingConfig, load_config
from pipeline.errors import Interrupted, TrackingError
from pipeline.logs import mask_credentials, mask_secrets, setup_logging
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-9f2c"
TEAM_URI = f"https://ci-bot:{SECRET}@mlflow.team.invalid"


def churn(*args: str, env: dict, log_to: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `churn ...` as a nightly job would, its output appended to a log file."""
    log_to.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    with log_to.open("a", encoding="utf-8") as log:
        log.write(result.stdout + result.stderr)
    return result


def env_with(store: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return env | {"MLFLOW_TRACKING_URI": store, "PYTHONPATH": str(ROOT)}


def store_uri(db: Path) -> str:
    return f"sqlite:///{db}"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """A small demo world, trained twice and scored by real `churn` processes. The config names
    a team server with a password; MLFLOW_TRACKING_URI points at a local SQLite store instead,
    as for a developer who overrides the team config."""
    from pipeline.demo.world import generate_world

    folder = tmp_path_factory.mktemp("tracking")
    generate_world(folder / "data", n_customers=600, seed=3)
    write_config(folder, tracking={"uri": TEAM_URI}, scoring={"formats": ["csv", "parquet"]})
    env = env_with(store_uri(folder / "mlflow.db"))
    config = str(folder / "config.yaml")
    for command in (["train"], ["train"], ["score", "--as-of", "2026-01-01"]):
        result = churn(*command, "--config", config, env=env, log_to=folder / "logs" / f"{command[0]}.log")
        assert result.returncode == 0, result.stderr
    return folder


def client_of(db: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=store_uri(db), registry_uri=store_uri(db))


def champions_of(db: Path) -> dict[str, tuple[str, str]]:
    """Per model, the champion's version and the training run it comes from."""
    client = client_of(db)
    found = {name: client.get_model_version_by_alias(name, "champion") for name in ("churn", "clv")}
    return {name: (str(v.version), tracking.training_run_of(client, v.run_id)) for name, v in found.items()}


def copy_store(world: Path, folder: Path) -> tuple[Path, dict]:
    """A copy of the world's store (same artifacts) to change without touching the world's."""
    db = folder / "mlflow.db"
    shutil.copy(world / "mlflow.db", db)
    return db, env_with(store_uri(db))


def tracking_config(db: Path, **settings) -> TrackingConfig:
    return TrackingConfig(uri=store_uri(db), artifact_dir=db.parent / "artifacts", **settings)


# --- secrets ----------------------------------------------------------------------------


def leaks_in(folder: Path) -> list[str]:
    """Files under `folder` that hold the password, but for the config file the user wrote."""
    return [str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and p != folder / "config.yaml" and SECRET.encode() in p.read_bytes()]


def test_no_file_a_train_and_score_writes_holds_the_password(world):
    assert SECRET in (world / "config.yaml").read_text()  # the team config, as the user wrote it
    assert leaks_in(world) == []
    # The artifacts were written, with the URI masked (not merely left out).
    client = client_of(world / "mlflow.db")
    run = client.search_runs([client.get_experiment_by_name("churn-pipeline").experiment_id],
                             order_by=["attributes.start_time ASC"])[0]
    folder = Path(client.download_artifacts(run.info.run_id, "", dst_path=str(world / "downloaded")))
    assert json.loads((folder / "resolved_config.json").read_text())["tracking"]["uri"] == \
        "https://***@mlflow.team.invalid"
    assert "uri: https://***@mlflow.team.invalid" in (folder / "config.yaml").read_text()
    assert (world / "at_risk" / "2026-01-01" / "manifest.json").is_file()
    assert (world / "logs" / "train.log").stat().st_size > 0


def test_a_config_dump_and_any_text_are_masked():
    dumped = mask_secrets(Config(tracking=TrackingConfig(uri=TEAM_URI)).model_dump(mode="json"))
    assert dumped["tracking"]["uri"] == "https://***@mlflow.team.invalid"
    assert mask_credentials("to http://u:p@ss:w@host:5000/x and https://token@h/") == \
        "to http://***@host:5000/x and https://***@h/"
    assert mask_credentials("sqlite:///mlflow.db and http://127.0.0.1:5000") == \
        "sqlite:///mlflow.db and http://127.0.0.1:5000"


@pytest.fixture
def project_logging():
    """setup_logging as the CLI calls it, undone afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    yield
    root.handlers[:], sys.excepthook = saved[0], saved[2]
    root.setLevel(saved[1])


def test_every_log_record_is_masked_message_arguments_and_traceback(project_logging, capsys):
    setup_logging()
    try:
        raise RuntimeError(f"API request to {TEAM_URI}/api failed")
    except RuntimeError:
        logging.getLogger("pipeline.tracking.store").exception("store %s failed", TEAM_URI)
    logging.getLogger("pipeline").warning(f"direct {TEAM_URI}")
    logging.getLogger("mlflow.utils").warning("MLflow's own logger: %s", TEAM_URI)  # routed through ours
    err = capsys.readouterr().err
    assert SECRET not in err
    assert err.count("https://***@mlflow.team.invalid") == 4 and "Traceback" in err


def test_the_traceback_of_a_bug_is_masked_too():
    crash = subprocess.run([sys.executable, "-c", "from pipeline.logs import setup_logging\nsetup_logging()\n"
                            f"raise RuntimeError('API request to {TEAM_URI}/api failed')"], cwd=ROOT,
                           capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert crash.returncode == 1 and "Traceback" in crash.stderr
    assert SECRET not in crash.stderr and "RuntimeError: API request to https://***@mlflow.team.invalid" in crash.stderr


def test_runs_log_no_warning_a_user_cannot_act_on(world):
    logs = (world / "logs" / "train.log").read_text()
    assert "CloudPickle" not in logs  # on every log_model
    assert "Found extra inputs" not in logs  # the champion scored on the validation rows
    assert "Traceback" not in logs


# --- an unreachable server --------------------------------------------------------------


@pytest.fixture
def silent_server():
    """A server on 127.0.0.1 that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_an_unreachable_server_is_named_in_time_without_the_password(silent_server, monkeypatch):
    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ci-bot:{SECRET}@127.0.0.1:{silent_server}")
    started = time.monotonic()
    with pytest.raises(TrackingError) as raised:
        tracking.load_champions(TrackingConfig(timeout_seconds=2))
    took = time.monotonic() - started
    assert 1.5 < took < 6, took  # MLflow alone retries for minutes
    message = str(raised.value)
    assert message.startswith(f"Cannot reach the tracking server at http://127.0.0.1:{silent_server}: no answer")
    assert SECRET not in message and "ci-bot" not in message
    assert raised.value.exit_code == 8
    # The run's HTTP limits and MLflow's export of the URI stay within the call.
    assert "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert os.environ["MLFLOW_TRACKING_URI"].endswith(f"127.0.0.1:{silent_server}")


def test_train_and_score_against_a_silent_server_fail_clearly_and_leak_nothing(world, silent_server, tmp_path):
    write_config(tmp_path, data={"path": str(world / "data")}, tracking={"timeout_seconds": 2})
    env = env_with(f"http://ci-bot:{SECRET}@127.0.0.1:{silent_server}")
    for command in (["score", "--as-of", "2026-01-01"], ["train"]):
        result = churn(*command, "--config", str(tmp_path / "config.yaml"), env=env,
                       log_to=tmp_path / "logs" / f"{command[0]}.log")
        assert result.returncode == 8, result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert f"Cannot reach the tracking server at http://127.0.0.1:{silent_server}: no answer within 2 s" in last
        assert "Traceback" not in result.stderr
    assert leaks_in(tmp_path) == []


# --- a corrupt, truncated or locked store -----------------------------------------------


def test_a_truncated_store_is_named_corrupt_with_the_way_out(world, tmp_path):
    db, env = copy_store(world, tmp_path)
    os.truncate(db, db.stat().st_size // 2)
    with pytest.raises(TrackingError) as raised:
        tracking.start_tracking(tracking_config(db))
    message = str(raised.value)
    assert f"The tracking store {db} is corrupt (database disk image is malformed)" in message
    assert f"mv {db} {db}.corrupt" in message and "backup" in message
    write_config(tmp_path, data={"path": str(world / "data")})
    result = churn("score", "--as-of", "2026-01-01", "--config", str(tmp_path / "config.yaml"), env=env,
                   log_to=tmp_path / "score.log")
    assert result.returncode == 8 and "is corrupt" in result.stderr and "Traceback" not in result.stderr


def test_a_file_that_is_no_database_is_named_corrupt(tmp_path):
    db = tmp_path / "mlflow.db"
    db.write_bytes(np.random.default_rng(1).bytes(8192))
    with pytest.raises(TrackingError, match=r"mlflow.db is corrupt \(file is not a database\)"):
        tracking.start_tracking(tracking_config(db))


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process holding an exclusive lock on the store for `seconds`."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         "con = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "con.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(float(sys.argv[2]))\n"
         "con.rollback()", str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_locked_store_is_waited_for_then_named_busy(world, tmp_path):
    db, _ = copy_store(world, tmp_path)
    child = hold_lock(db, 60)
    try:
        started = time.monotonic()
        with pytest.raises(TrackingError) as raised:
            tracking.start_tracking(tracking_config(db, busy_timeout_seconds=1.5))
        assert 1.4 < time.monotonic() - started < 10
    finally:
        child.kill()
        child.wait()
    assert f"The tracking store {db} is busy: another process has held it locked for more than 1.5 s" in \
        str(raised.value)


def test_a_lock_released_within_the_busy_timeout_is_only_waited_for(world, tmp_path):
    db, _ = copy_store(world, tmp_path)
    child = hold_lock(db, 1.5)
    started = time.monotonic()
    client = tracking.start_tracking(tracking_config(db, busy_timeout_seconds=20))
    assert time.monotonic() - started > 1.0
    assert client.get_model_version_by_alias("churn", "champion").version
    child.wait()


# --- runs end, and champions come in pairs ----------------------------------------------


def status_of(db: Path, run_id: str) -> str:
    return client_of(db).get_run(run_id).info.status


def test_an_exception_ends_the_run_failed_and_a_signal_ends_it_killed(tmp_path):
    cfg = tracking_config(tmp_path / "mlflow.db")
    with pytest.raises(RuntimeError), tracking.tracked_run(cfg, "boom") as (_, run):
        raise RuntimeError("a bug")
    assert status_of(tmp_path / "mlflow.db", run.info.run_id) == "FAILED"
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    with pytest.raises(Interrupted) as raised, tracking.tracked_run(cfg, "stopped") as (_, run):
        signal.raise_signal(signal.SIGINT)
    assert raised.value.exit_code == 130 and "marked KILLED" in str(raised.value)
    assert status_of(tmp_path / "mlflow.db", run.info.run_id) == "KILLED"


def test_a_signal_while_a_child_run_is_open_ends_the_parent_killed_as_well(tmp_path):
    """A signal inside a child run's start (or end) leaves the child open with no `with`
    block to close it; the run the message names must still end KILLED, not stay RUNNING."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    cfg = tracking_config(tmp_path / "mlflow.db")
    with pytest.raises(Interrupted) as raised, tracking.tracked_run(cfg, "stopped") as (_, run):
        child = mlflow.start_run(run_name="child", nested=True)  # as start_run leaves it when interrupted
        signal.raise_signal(signal.SIGTERM)
    assert f"The MLflow run {run.info.run_id} is marked KILLED" in str(raised.value)
    assert status_of(tmp_path / "mlflow.db", run.info.run_id) == "KILLED"
    assert status_of(tmp_path / "mlflow.db", child.info.run_id) == "KILLED"
    assert mlflow.active_run() is None


KILL_AFTER_FIRST_ALIAS = """
import os, signal, sys
from mlflow.tracking import MlflowClient
set_alias = MlflowClient.set_registered_model_alias
def set_alias_then_die(self, *args, **kwargs):  # the kill lands between the two alias writes
    set_alias(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
MlflowClient.set_registered_model_alias = set_alias_then_die
from pipeline.cli import app
app(sys.argv[1:])
"""


def test_a_train_killed_between_the_two_aliases_leaves_one_pair(world, tmp_path):
    db, env = copy_store(world, tmp_path)
    before = champions_of(db)
    config = str(world / "config.yaml")
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_FIRST_ALIAS, "train", "--promote", "force", "--config",
                             config], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    half = champions_of(db)
    assert half["churn"] != before["churn"] and half["clv"] == before["clv"]  # one alias written, not the other
    # Scoring reads the pair the promotion decided, not a churn and a CLV model of two runs.
    churn_model, clv_model = tracking.load_champions(tracking_config(db))
    assert churn_model.training_run_id == clv_model.training_run_id == half["churn"][1]
    # The next training run completes the promotion and fails the run the kill left RUNNING.
    result = churn("train", "--promote", "never", "--config", config, env=env, log_to=tmp_path / "train.log")
    assert result.returncode == 0, result.stderr
    after = champions_of(db)
    assert after["churn"] == half["churn"] and after["clv"][1] == half["churn"][1]
    assert status_of(db, half["churn"][1]) == "FAILED"
    assert "completed the promotion of run" in result.stderr and "marked FAILED" in result.stderr


def running_run(db: Path) -> str | None:
    with closing(sqlite3.connect(db, timeout=5)) as con:
        found = con.execute("SELECT run_uuid FROM runs WHERE status = 'RUNNING'").fetchone()
    return found[0] if found else None


def test_sigterm_during_train_ends_the_run_killed_in_one_paragraph(world, tmp_path):
    db, env = copy_store(world, tmp_path)
    with (tmp_path / "train.log").open("w") as log:
        child = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "train", "--promote", "force", "--config",
                                  str(world / "config.yaml")], cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 240
        while (run_id := running_run(db)) is None and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run_id, "the training run never started"
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=120)
    err = (tmp_path / "train.log").read_text()
    assert child.returncode == 143, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith(f"Stopped by SIGTERM. The MLflow run {run_id} is marked KILLED.")
    assert status_of(db, run_id) == "KILLED"
    pair = champions_of(db)
    assert pair["churn"][1] == pair["clv"][1]  # untouched, or both (a signal waits for the pair)


# --- the promotion policy ---------------------------------------------------------------

RULES = PromotionConfig(min_gain=0.005, max_ece_increase=0.01)


def origins(metric: str, values: list[float], ece: list[float] | None = None, start: int = 4) -> list[dict]:
    """A run's per-origin backtest, as backtest.json holds it."""
    return [{"origin": f"2025-{start + k:02d}-01", metric: v} | ({"ece": ece[k]} if ece else {})
            for k, v in enumerate(values)]


def test_a_gain_of_min_gain_on_the_shared_origins_promotes():
    ours, theirs = origins("roc_auc", [0.81, 0.82, 0.80], [0.02] * 3), origins("roc_auc", [0.80, 0.81, 0.79], [0.02] * 3)
    verdict = tracking.promotion_verdict("churn", ours, theirs, RULES, "3")
    assert verdict["passed"] and verdict["rule"] == "min_gain" and verdict["gain"] == pytest.approx(0.01)
    assert verdict["shared_origins"] == 3
    assert verdict["why"].startswith("passes by min_gain: backtest roc_auc") and "vs champion v3" in verdict["why"]


def test_a_small_gain_at_every_origin_promotes_by_its_interval():
    ours = origins("roc_auc", [0.803, 0.8135, 0.7935], [0.02] * 3)
    theirs = origins("roc_auc", [0.80, 0.81, 0.79], [0.02] * 3)
    verdict = tracking.promotion_verdict("churn", ours, theirs, RULES, "3")
    assert 0 < verdict["gain"] < 0.005 and verdict["passed"] and verdict["rule"] == "interval"


def test_a_gain_within_the_noise_keeps_the_champion():
    ours = origins("roc_auc", [0.804, 0.807, 0.791], [0.02] * 3)
    theirs = origins("roc_auc", [0.80, 0.81, 0.79], [0.02] * 3)
    verdict = tracking.promotion_verdict("churn", ours, theirs, RULES, "3")
    assert verdict["gain"] < 0.005 and not verdict["passed"] and verdict["rule"] == "no clear gain"
    assert "fails by no clear gain" in verdict["why"]


def test_a_better_ranking_with_worse_calibration_keeps_the_champion():
    ours = origins("roc_auc", [0.82, 0.83, 0.81], [0.04] * 3)
    theirs = origins("roc_auc", [0.80, 0.81, 0.79], [0.02] * 3)
    verdict = tracking.promotion_verdict("churn", ours, theirs, RULES, "3")
    assert verdict["gain"] >= 0.005 and verdict["ece_increase"] == pytest.approx(0.02)
    assert not verdict["passed"] and verdict["rule"] == "ece" and "ECE" in verdict["why"]


def test_clv_rules_use_spearman():
    better = tracking.promotion_verdict("clv", origins("spearman", [0.62, 0.61]), origins("spearman", [0.6, 0.6]),
                                        RULES, "2")
    assert better["passed"] and better["rule"] == "min_gain" and better["metric"] == "spearman"
    same = tracking.promotion_verdict("clv", origins("spearman", [0.6, 0.6]), origins("spearman", [0.6, 0.6]),
                                      RULES, "2")
    assert not same["passed"] and same["rule"] == "no clear gain" and "ece_increase" not in same


def test_a_champion_from_older_origins_gives_way_to_fresher_labels_unless_clearly_worse():
    older = origins("roc_auc", [0.80, 0.81], [0.02] * 2, start=1)
    fresher = tracking.promotion_verdict("churn", origins("roc_auc", [0.80, 0.808], [0.02] * 2, start=6), older,
                                         RULES, "4")
    assert fresher["passed"] and fresher["rule"] == "fresher labels" and fresher["shared_origins"] == 0
    worse = tracking.promotion_verdict("churn", origins("roc_auc", [0.70, 0.71], [0.02] * 2, start=6), older,
                                       RULES, "4")
    assert not worse["passed"]


def test_retraining_the_same_model_is_not_promoted_and_says_why(world):
    client = client_of(world / "mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("churn-pipeline").experiment_id],
                              "tags.churn_candidate LIKE '%'", order_by=["attributes.start_time ASC"])
    decision = json.loads(Path(client.download_artifacts(runs[1].info.run_id, "promotion.json",
                                                         str(world / "second"))).read_text())
    assert decision["promoted"] is False and decision["mode"] == "auto"
    assert decision["churn"]["rule"] == decision["clv"]["rule"] == "no clear gain"
    assert decision["churn"]["gain"] == 0 and decision["churn"]["champion_version"] == "1"
    assert champions_of(world / "mlflow.db")["churn"][0] == "1"
    assert "not promoted: kept the champions: churn and clv did not pass" in (world / "logs" / "train.log").read_text()


def test_one_model_failing_keeps_both_champions(world, tmp_path):
    """The pair goes together: a CLV model with no champion to beat would pass, but the churn
    model ties its champion, so neither is promoted."""
    from pipeline.tables import load_tables
    from pipeline.train import training_plans
    from tests.conftest import RUN_AT

    db, _ = copy_store(world, tmp_path)
    cfg = load_config(world / "config.yaml").model_copy(update={"tracking": tracking_config(db)})
    client = tracking.start_tracking(cfg.tracking)
    champions = tracking.load_champions(cfg.tracking)
    client.delete_registered_model_alias("clv", "champion")
    tables = load_tables(cfg.data.path, RUN_AT, None)
    plans = training_plans(tables, cfg)
    run = champions[0].run_id  # the same backtest as the champion's: a tie
    backtest = mlflow.artifacts.load_dict(f"runs:/{run}/backtest.json")
    trained = SimpleNamespace(per_origin=lambda kind: backtest[kind], plans=plans)
    decision = tracking.decide_promotion(client, cfg, trained, {"churn": "9", "clv": "9"}, "auto")
    assert decision["clv"]["passed"] and decision["clv"]["why"] == "no champion yet"
    assert not decision["churn"]["passed"] and decision["promoted"] is False


def test_a_champion_pickled_before_the_tracking_package_still_loads():
    """Models registered up to 187b939 pickled their wrapper as models.packaging.PyfuncModel."""
    import pickle

    from pipeline.tracking.registry import PyfuncModel

    wrapped = PyfuncModel({"fitted": "model"})
    moved = PyfuncModel.__module__
    try:
        PyfuncModel.__module__ = "models.packaging"  # pickle as the old code did
        old_bytes = pickle.dumps(wrapped)
    finally:
        PyfuncModel.__module__ = moved
    assert b"models.packaging" in old_bytes
    loaded = pickle.loads(old_bytes)
    assert isinstance(loaded, PyfuncModel) and loaded.model == {"fitted": "model"}
