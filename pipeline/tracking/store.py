"""The tracking store: pointing MLflow at it, bounding how long a server may take, and its
failures in words (an unreachable server, a corrupt or locked SQLite file), with no
credential in any of them. Importing it routes MLflow's loggers through the masked handler."""


from __future__ import annotations

import logging
import math
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow.tracking import MlflowClient

from pipeline.config import TrackingConfig
from pipeline.errors import PipelineError, TrackingError
from pipeline.logs import adopt_loggers, mask_credentials

log = logging.getLogger(__name__)
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


def current_config() -> TrackingConfig:
    """The tracking config of the innermost `guarded` block (what a failure is worded for)."""
    return _session["cfg"]


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


# The MLflow UI opens an experiment of this kind on its runs (model training), not on its
# GenAI traces view.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


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
            mlflow.create_experiment(cfg.experiment, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)
        experiment = mlflow.set_experiment(cfg.experiment)
        if any(experiment.tags.get(k) != v for k, v in EXPERIMENT_TAGS.items()):  # made by an older version
            for key, value in EXPERIMENT_TAGS.items():
                mlflow.set_experiment_tag(key, value)
        return MlflowClient(tracking_uri=uri, registry_uri=uri)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


