"""MLflow: where runs and models are kept, how models are registered and promoted.

The default store is a SQLite file in the project directory (nothing to start); a team
server is only a different `tracking.uri` (or MLFLOW_TRACKING_URI). The URI is always set
explicitly, so MLflow never falls back to a folder it picks itself."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from models.packaging import PyfuncModel
from pipeline.config import TrackingConfig
from pipeline.errors import ModelNotFoundError

log = logging.getLogger(__name__)
CHAMPION = "champion"
# What a logged model needs to run: the project itself provides the model classes.
PIP_REQUIREMENTS = ["churn-pipeline", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow"]


def start_tracking(cfg: TrackingConfig) -> MlflowClient:
    """Point MLflow at the configured store and make sure the experiment exists."""
    uri = cfg.resolved_uri()
    user_setting = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow also exports the URI to the environment, where it would override the next
    # config loaded in this process; keep the user's own setting (or none) there.
    if user_setting is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = user_setting
    if mlflow.get_experiment_by_name(cfg.experiment) is None:
        artifact_location = None
        if uri.startswith("sqlite:"):  # a local store keeps its artifacts beside it
            artifact_location = cfg.artifact_dir.resolve().as_uri()
        mlflow.create_experiment(cfg.experiment, artifact_location=artifact_location)
    mlflow.set_experiment(cfg.experiment)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def log_model(model, name: str, example: pd.DataFrame) -> str:
    """Log and register a fitted model as a pyfunc model; return the new version."""
    wrapped = PyfuncModel(model)
    signature = infer_signature(example, model.predict(example))
    info = mlflow.pyfunc.log_model(
        name=name, python_model=wrapped, signature=signature, input_example=example,
        pip_requirements=PIP_REQUIREMENTS, registered_model_name=name,
    )
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


def load_champion(client: MlflowClient, name: str) -> Champion:
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"No '{CHAMPION}' version of the registered model '{name}' in {mlflow.get_tracking_uri()}. "
            "Run `make train` first (or `churn train --promote force`)."
        ) from exc
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    return Champion(name, str(version.version), version.run_id, model)


def champion_or_none(client: MlflowClient, name: str) -> Champion | None:
    try:
        return load_champion(client, name)
    except ModelNotFoundError:
        return None


def set_champion(client: MlflowClient, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)
