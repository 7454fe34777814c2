"""MLflow, in one place: where runs and models are kept, what a training or tuning run logs,
how models are registered, the promotion policy, loading champions, and reading past runs.

The default store is a SQLite file in the project directory (nothing to start); a team server
is only a different `tracking.uri` (or MLFLOW_TRACKING_URI), always set explicitly. No credential
reaches a log, an error or an artifact; an unreachable server or a corrupt or locked store is one
clear error; both champions come from one run; every run ends FINISHED, FAILED or KILLED."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from features.model_input import CutoffPlan
from models.evaluation import Evaluation
from models.metrics import auc_gain_interval, churn_metrics, clv_metrics, spearman_gain_interval
from pipeline import errors
from pipeline.config import Config, PromotionConfig, TrackingConfig
from pipeline.errors import Interrupted, ModelNotFoundError, PipelineError, TrackingError
from pipeline.logs import adopt_loggers, mask_credentials, mask_secrets, stage

log = logging.getLogger(__name__)
CHAMPION = "champion"
PAIR_TAG = "churn.champion_pair"  # on the churn registered model: the pair a promotion sets
# What a logged model needs to run: the project itself provides the model classes.
PIP_REQUIREMENTS = ["churn-pipeline", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow"]
adopt_loggers("mlflow", "alembic", "sqlalchemy.engine", "huey")
# MLflow logs a failed SQL statement with its traceback before raising; `guarded` words it.
logging.getLogger("mlflow.store.db.utils").addFilter(lambda r: "SQLAlchemy database error" not in r.getMessage())
# Harmless, so silenced: the warning says that a pickled model runs code when loaded. Ours are
# pickled by this process and loaded only from the team's own registry; a models-from-code
# file would not change that, since the fitted booster and calibration are pickled anyway.
logging.getLogger("mlflow.pyfunc").addFilter(lambda r: "serialized using CloudPickle" not in r.getMessage())


# --- the store: where it is, and failures in words --------------------------------------

_session: dict = {"cfg": TrackingConfig(), "depth": 0, "ours": []}
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
               "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0", "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0"}


@contextmanager
def guarded(cfg: TrackingConfig | None = None) -> Iterator[None]:
    """Within: MLflow's HTTP requests give up after tracking.timeout_seconds, unretried (else for
    minutes), unless the user set those; a store that fails raises TrackingError. Nests; `@guarded()`."""
    if _session["depth"] == 0:
        _session["ours"] = [k for k in HTTP_LIMITS if k not in os.environ]
    if cfg is not None or _session["depth"] == 0:  # the innermost config given decides
        _session["cfg"] = cfg = cfg or _session["cfg"]
        limits = HTTP_LIMITS | {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, math.ceil(cfg.timeout_seconds)))}
        os.environ.update({k: limits[k] for k in _session["ours"]})
    _session["depth"] += 1
    try:
        yield
    except PipelineError:
        raise
    except Exception as exc:
        if (failure := store_failure(exc, _session["cfg"])) is None:
            raise
        raise failure from exc
    finally:
        _session["depth"] -= 1
        for key in _session["ours"] if _session["depth"] == 0 else []:
            os.environ.pop(key, None)


def sqlite_path(uri: str) -> Path | None:
    """The file of sqlite:///relative.db or sqlite:////absolute.db (None for another store)."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):].split("?")[0]) if uri.startswith(prefix) else None


def store_failure(exc: BaseException, cfg: TrackingConfig) -> TrackingError | None:
    """The error a user can act on, for a failure of the configured store (None: a bug)."""
    uri, text = cfg.resolved_uri(), mask_credentials(f"{exc} {exc.__cause__ or ''}")
    path = sqlite_path(uri)
    if uri.startswith(("http://", "https://")):
        reasons = {r"\b40[13]\b|UNAUTHENTICATED|PERMISSION_DENIED": "it refused the credentials (MLFLOW_TRACKING_"
                   "USERNAME and _PASSWORD, or _TOKEN)", "timed? ?out": f"no answer within {cfg.timeout_seconds:g} "
                   "s", "refused": "connection refused", "not known|nodename|getaddrinfo": "unknown host name",
                   "reset|aborted|Disconnected|Max retries|Failed to establish": "the connection failed"}
        reason = next((r for pattern, r in reasons.items() if re.search(pattern, text, re.IGNORECASE)), None)
        server = re.sub(r"^([^:/]+://)[^/]*@", r"\1", uri).rstrip("/")  # without its credentials
        return TrackingError.unreachable(server, reason, cfg.timeout_seconds) if reason else None
    if path is not None and re.search(r"database is (locked|busy)", text):
        return TrackingError.busy(path, 20)  # MLflow's own SQLite sessions wait 20 s (their busy_timeout)
    if path is not None and re.search(r"malformed|not a database|disk I/O error|file is encrypted", text):
        return TrackingError.corrupt(path, text)
    return None


def start_tracking(cfg: TrackingConfig) -> MlflowClient:
    """Point MLflow at the configured store (checked first) and make sure the experiment exists."""
    with guarded(cfg):
        uri = cfg.resolved_uri()
        if (path := sqlite_path(uri)) is not None and (failure := TrackingError.of_sqlite_file(
                path, cfg.busy_timeout_seconds)):
            raise failure
        user_settings = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        # MLflow also exports the URI (credentials and all) to the environment, where it would
        # override the next config loaded in this process and reach every child process.
        for key, value in user_settings.items():
            os.environ.pop(key, None)
            os.environ.update({key: value} if value is not None else {})
        if mlflow.get_experiment_by_name(cfg.experiment) is None:
            artifact_location = None
            if path is not None:  # a local store keeps its artifacts beside it
                artifact_location = cfg.artifact_dir.resolve().as_uri()
            mlflow.create_experiment(cfg.experiment, artifact_location=artifact_location)
        mlflow.set_experiment(cfg.experiment)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- runs that always end ---------------------------------------------------------------


def owner() -> dict[str, str]:  # tagged on runs and trials, so that the next run can tell a dead one
    return {"churn.host": socket.gethostname(), "churn.pid": str(os.getpid())}


def owner_gone(host: str | None, pid: str | None) -> bool:
    """Whether the process that started a run or trial is gone (its pid free, a zombie, or ours);
    False when unknown: another host, or no tags."""
    if host != socket.gethostname() or not str(pid or "").isdigit():
        return False
    if int(pid) == os.getpid():  # a new process that got the dead one's pid
        return True
    try:
        os.kill(int(pid), 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: someone else's live process; no /proc: alive
        return False


def reap_abandoned_runs(client: MlflowClient, experiment: str) -> None:
    """Mark FAILED the runs left RUNNING by a process that was killed outright (SIGKILL, power)."""
    found = client.get_experiment_by_name(experiment)
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if owner_gone(tags.get("churn.host"), tags.get("churn.pid")):
            client.set_tag(run.info.run_id, "churn.ended_by", f"process {os.getpid()}: its own process was gone")
            client.set_terminated(run.info.run_id, "FAILED")
            log.warning("MLflow run %s (%s) was left RUNNING by process %s, which is gone: marked FAILED",
                        run.info.run_id, run.info.run_name, tags.get("churn.pid", "?"))


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, signals=(signal.SIGINT, signal.SIGTERM)) -> Iterator[tuple]:
    """One MLflow run that always ends: FINISHED, FAILED on an exception, KILLED on `signals`
    (raised within as Signalled) or Interrupted, which leaves with the run named."""
    with guarded(cfg):
        client = start_tracking(cfg)
        reap_abandoned_runs(client, cfg.experiment)
        run = mlflow.start_run(run_name=run_name, tags=owner())
        try:
            with errors.on_signals(errors.raise_signalled, signals):
                yield client, run
                errors.check_signals()  # one that landed where Python could only print it
        except (Interrupted, KeyboardInterrupt) as exc:
            errors.signal_handled()
            signum = getattr(exc, "signum", signal.SIGINT)
            _end_run("KILLED", failing=True)
            raise Interrupted(f"{str(exc) or 'Stopped by SIGINT.'} The MLflow run {run.info.run_id} is marked "
                              "KILLED.", signum) from None
        except BaseException:
            _end_run("FAILED", failing=True)
            raise
        _end_run("FINISHED")


def _end_run(status: str, failing: bool = False) -> None:
    with errors.deferred_signals():
        try:
            mlflow.end_run(status)
        except Exception as exc:  # noqa: BLE001 - the store may be what failed; keep the first error
            if not failing:
                raise
            log.warning("could not mark the MLflow run %s: %s", status, exc)


class PyfuncModel(mlflow.pyfunc.PythonModel):
    """A fitted project model as a pyfunc model: `predict` gives calibrated churn probabilities
    or predicted CLV; scoring unwraps the fitted object for per-customer contributions."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict(model_input)


def log_model(model, name: str, example: pd.DataFrame) -> str:
    """Log and register a fitted model as a pyfunc model; return the new version."""
    info = mlflow.pyfunc.log_model(name=name, python_model=PyfuncModel(model), input_example=example,
                                   signature=infer_signature(example, model.predict(example)),
                                   pip_requirements=PIP_REQUIREMENTS, registered_model_name=name)
    return str(info.registered_model_version)


@dataclass
class Champion:
    name: str
    version: str
    run_id: str
    model: mlflow.pyfunc.PyFuncModel

    @property
    def fitted(self):
        """The fitted project model inside the pyfunc wrapper (for contributions)."""
        return self.model.unwrap_python_model().model

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """From the columns the model was logged with (more would only draw MLflow's warning)."""
        schema = self.model.metadata.get_input_schema()
        return np.asarray(self.model.predict(rows[schema.input_names()] if schema else rows))


@guarded()
def load_champion(client: MlflowClient, name: str, version: str | None = None) -> Champion:
    """The champion of a registered model (or, given, the version a pending promotion sets)."""
    try:
        found = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name,
                                                                                                          CHAMPION)
    except MlflowException as exc:
        if store_failure(exc, _session["cfg"]):
            raise
        raise ModelNotFoundError(f"No '{CHAMPION}' version of the registered model '{name}' in "
                                 f"{mask_credentials(mlflow.get_tracking_uri())}. Run `make train` first (or "
                                 "`churn train --promote force`).") from exc
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{found.version}")
    except (ImportError, AttributeError) as exc:  # pickled against code that has since moved
        raise ModelNotFoundError(f"The '{CHAMPION}' version {found.version} of the registered model '{name}' was "
                                 f"logged by an older version of churn-pipeline and cannot be loaded ({exc}). Run "
                                 "`make train` to train and register a new champion.") from exc
    return Champion(name, str(found.version), found.run_id, model)


def pending_pair(client: MlflowClient) -> dict:
    """The record of a promotion cut short before both aliases were set ({} when none is)."""
    found = client.search_registered_models(filter_string=f"tags.`{PAIR_TAG}` LIKE '%pending%'")
    return next((r for r in (json.loads(m.tags[PAIR_TAG]) for m in found) if r.get("state") == "pending"), {})


@guarded()
def load_champions(cfg: TrackingConfig) -> tuple[Champion, Champion]:
    """The churn and CLV champions of the configured store: always the two of one promotion."""
    client = start_tracking(cfg)
    versions = (pending := pending_pair(client)).get("versions", {})
    if pending:
        log.warning("the promotion of run %s was cut short before both champions were set; using its pair %s (the "
                    "next `churn train` completes it)", pending["run_id"], versions)
    churn, clv = (load_champion(client, name, versions.get(name)) for name in (cfg.churn_model_name,
                                                                                cfg.clv_model_name))
    log.info("champions: %s v%s, %s v%s", churn.name, churn.version, clv.name, clv.version)
    return churn, clv


@guarded()
def champion_or_none(client: MlflowClient, name: str) -> Champion | None:
    try:
        return load_champion(client, name, pending_pair(client).get("versions", {}).get(name))
    except ModelNotFoundError as exc:
        if "cannot be loaded" in str(exc):  # there is a champion, but it cannot be read
            log.warning("%s", exc)
        return None


def set_champions(client: MlflowClient, cfg: TrackingConfig, versions: dict[str, str], run_id: str) -> None:
    """Make both versions champions, or (cut short) leave a record that completes it: the pair
    is recorded first, then both aliases are set, then the record is marked done."""
    record = {"run_id": run_id, "versions": versions, "state": "pending"}
    with errors.deferred_signals():
        client.set_registered_model_tag(cfg.churn_model_name, PAIR_TAG, json.dumps(record))
        for name, version in versions.items():
            client.set_registered_model_alias(name, CHAMPION, version)
        client.set_registered_model_tag(cfg.churn_model_name, PAIR_TAG, json.dumps(record | {"state": "done"}))


def repair_champions(client: MlflowClient, cfg: TrackingConfig) -> None:
    """Complete a promotion that a killed run left half done (one alias set, not the other)."""
    if record := pending_pair(client):
        set_champions(client, cfg, record["versions"], record["run_id"])
        log.warning("completed the promotion of run %s that was cut short: champions are now %s", record["run_id"],
                    ", ".join(f"{name} v{version}" for name, version in record["versions"].items()))


# --- training runs and the promotion policy ---------------------------------------------


@dataclass
class TrainedModels:
    """What a training run logs: both evaluations, the plans and rows they were judged on, inputs."""

    churn: Evaluation
    clv: Evaluation
    plans: dict[str, CutoffPlan]
    validation_rows: dict[str, pd.DataFrame]
    params: dict[str, dict]
    training_rows: int
    data_fingerprint: dict
    config_text: str


def log_training_run(cfg: Config, trained: TrainedModels, promote: str) -> dict:
    """Log one MLflow run (config, cutoffs, data fingerprint, parameters, metrics, plots,
    tables), register both models and apply the promotion policy; return the run summary."""
    models = {"churn": trained.churn, "clv": trained.clv}
    names = {"churn": cfg.tracking.churn_model_name, "clv": cfg.tracking.clv_model_name}
    with tracked_run(cfg.tracking, f"train-{trained.plans['churn'].validation}") as (client, run):
        repair_champions(client, cfg.tracking)
        mlflow.set_tags({"git_commit": git_commit(), "churn_definition": cfg.churn.definition})
        mlflow.log_text(mask_credentials(trained.config_text), "config.yaml")
        mlflow.log_dict(mask_secrets(cfg.model_dump(mode="json")), "resolved_config.json")
        mlflow.log_dict({name: plan.as_dict() for name, plan in trained.plans.items()}, "cutoffs.json")
        mlflow.log_dict(mask_secrets(trained.data_fingerprint), "data_fingerprint.json")
        mlflow.log_dict({name: result.model.schema.names for name, result in models.items()}, "features.json")
        mlflow.log_params({"seed": cfg.model.seed, "training_rows": trained.training_rows}
                          | {f"{name}_{k}": v for name in models for k, v in trained.params[name].items()})
        for prefix, result in models.items():
            mlflow.log_metrics({f"{prefix}_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
            for name, figure in result.figures.items():
                mlflow.log_figure(figure, f"plots/{name}")
            for name, table in result.tables.items():
                mlflow.log_table(table, f"{name}.json")
        with stage("log and register models"):
            versions = {kind: log_model(models[kind].model, names[kind],
                                        models[kind].model.example_input(trained.validation_rows[kind]))
                        for kind in models}
        decision = decide_promotion(client, cfg, trained, versions, promote)
        mlflow.log_dict(decision, "promotion.json")
        if decision["promoted"]:
            set_champions(client, cfg.tracking, {names[kind]: versions[kind] for kind in models}, run.info.run_id)
    return {"run_id": run.info.run_id, "churn": trained.churn.metrics, "clv": trained.clv.metrics,
            "promotion": decision, "rows": trained.training_rows, "churn_plan": trained.plans["churn"].as_dict()}


def decide_promotion(client: MlflowClient, cfg: Config, trained: TrainedModels, versions: dict[str, str],
                     mode: str) -> dict:
    """Both models of the run become champions together, or neither: `force` always, `never`
    never, `auto` when each passes `promotion_verdict` against its champion (or has none)."""
    errors.check_signals()  # a signal Python could only print stops the run before it promotes
    decision: dict = {"mode": mode, "versions": versions}
    if mode != "auto":
        decision["promoted"], decision["why"] = mode == "force", f"--promote {mode}"
    else:
        for kind, name in (("churn", cfg.tracking.churn_model_name), ("clv", cfg.tracking.clv_model_name)):
            decision[kind] = judge(kind, champion_or_none(client, name), trained, cfg)
        failed = [kind for kind in ("churn", "clv") if not decision[kind]["passed"]]
        decision["promoted"] = not failed
        decision["why"] = ("both models pass" if not failed else f"kept the champions: {' and '.join(failed)} did "
                           "not pass") + "; " + "; ".join(f"{k}: {decision[k]['why']}" for k in ("churn", "clv"))
    log.info("churn v%s and clv v%s %s: %s", versions["churn"], versions["clv"],
             "promoted to champion" if decision["promoted"] else "not promoted", decision["why"])
    return decision


def judge(kind: str, current: Champion | None, trained: TrainedModels, cfg: Config) -> dict:
    """The verdict on one model of the run against its champion, on the same validation rows."""
    if current is None:
        return {"passed": True, "rule": "no champion", "why": "no champion yet"}
    valid, label = trained.validation_rows[kind], {"churn": "is_churned", "clv": "future_revenue"}[kind]
    try:
        old = current.predict(valid)
    except Exception as exc:  # noqa: BLE001 - an old champion may not read today's features; replace it
        return {"passed": True, "rule": "champion unusable", "champion_version": current.version,
                "why": f"champion v{current.version} cannot score today's features ({exc})"}
    new = getattr(trained, kind).model.predict(valid)
    return promotion_verdict(kind, valid[label].to_numpy(), new, old, cfg.promotion, cfg.model.seed, current.version)


def promotion_verdict(kind: str, y: np.ndarray, new: np.ndarray, old: np.ndarray, rules: PromotionConfig,
                      seed: int, champion_version: str) -> dict:
    """Does the new model beat the champion on the same validation rows? By `min_gain` (ROC AUC
    for churn, Spearman for CLV) or by a paired-bootstrap 95% interval of the gain above zero;
    and for churn, with an ECE at most `max_ece_increase` above the champion's. Says which
    rule decided, with the numbers."""
    metric, metrics, interval = {"churn": ("roc_auc", churn_metrics, auc_gain_interval),
                                 "clv": ("spearman", clv_metrics, spearman_gain_interval)}[kind]
    ours, theirs, (low, high) = metrics(y, new), metrics(y, old), interval(y, new, old, seed)
    gain, increase = ours[metric] - theirs[metric], ours.get("ece", 0.0) - theirs.get("ece", 0.0)
    rule = "min_gain" if gain >= rules.min_gain else "interval" if low > 0 else "no clear gain"
    if kind == "churn" and rule != "no clear gain" and increase > rules.max_ece_increase:
        rule = "ece"
    why = (f"{metric} {ours[metric]:.4f} vs champion v{champion_version} {theirs[metric]:.4f}, gain {gain:+.4f} "
           f"({'>=' if gain >= rules.min_gain else '<'} min_gain {rules.min_gain:g}), 95% interval {low:+.4f} to "
           f"{high:+.4f}") + (f"; ECE {ours['ece']:.4f} vs {theirs['ece']:.4f} ({increase:+.4f}, at most "
                              f"+{rules.max_ece_increase:g})" if kind == "churn" else "")
    passed = rule in ("min_gain", "interval")
    return {"passed": passed, "rule": rule, "why": f"{'passes' if passed else 'fails'} by {rule}: {why}",
            "champion_version": champion_version, "metric": metric, "score": ours[metric],
            "champion_score": theirs[metric], "gain": gain, "gain_ci95": [low, high], "min_gain": rules.min_gain} | (
        {"ece": ours["ece"], "champion_ece": theirs["ece"], "ece_increase": increase,
         "max_ece_increase": rules.max_ece_increase} if kind == "churn" else {})


def log_tuning_result(model: str, best_params: dict, metric: str, best_value: float) -> None:
    mlflow.log_params({f"{model}_{k}": v for k, v in best_params.items()})
    mlflow.log_metric(f"{model}_best_holdout_{metric}", best_value)


@guarded()
def training_cutoffs_of(run_id: str) -> tuple[list[dt.date], dt.date | None]:
    """The churn cutoffs a training run used (logged as cutoffs.json): training and validation."""
    try:
        plan = mlflow.artifacts.load_dict(f"runs:/{run_id}/cutoffs.json")["churn"]
        return [dt.date.fromisoformat(c) for c in plan["training"]], dt.date.fromisoformat(plan["validation"])
    except Exception as exc:  # noqa: BLE001 - an older run without the file: roles unknown
        log.warning("cannot read the champion's training cutoffs (%s); roles are left open", exc)
        return [], None


def store_exists(cfg: TrackingConfig) -> bool:
    """A local SQLite store that does not exist yet has no champion (and asking MLflow
    would create it): sqlite:///relative.db or sqlite:////absolute.db."""
    path = sqlite_path(cfg.resolved_uri())
    return path is None or path.is_file()
