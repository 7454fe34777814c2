"""The model registry: logging a fitted model as a pyfunc model, the champions (loaded,
set and repaired as one pair from one run)."""


from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from pipeline import errors
from pipeline.config import TrackingConfig
from pipeline.errors import ModelNotFoundError
from pipeline.logs import mask_credentials
from pipeline.tracking.store import current_config, guarded, start_tracking, store_failure

log = logging.getLogger(__name__)
CHAMPION = "champion"
PAIR_TAG = "churn.champion_pair"  # on the churn registered model: the pair a promotion sets
# What a logged model needs to run: the project itself provides the model classes.
PIP_REQUIREMENTS = ["churn-pipeline", "lightgbm", "scikit-learn", "pandas", "numpy", "mlflow"]
# Scoring on Spark runs the models in this process's environment on purpose (the workers run
# its Python): MLflow's advice to rebuild the training environment with conda does not apply.
logging.getLogger("mlflow.pyfunc").addFilter(lambda r: 'env_manager="local"' not in r.getMessage())




class PyfuncModel(mlflow.pyfunc.PythonModel):
    """A fitted project model as a pyfunc model: `predict` gives calibrated churn probabilities
    or predicted CLV; scoring unwraps the fitted object for per-customer contributions."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict(model_input)


def log_model(model, name: str, example: pd.DataFrame):
    """Log and register a fitted model as a pyfunc model; return MLflow's model info (its
    `registered_model_version` and `model_id`)."""
    return mlflow.pyfunc.log_model(name=name, python_model=PyfuncModel(model), input_example=example,
                                   signature=infer_signature(example, model.predict(example)),
                                   pip_requirements=PIP_REQUIREMENTS, registered_model_name=name)


@dataclass
class Champion:
    name: str
    version: str
    run_id: str  # the model's own run: its backtest, cutoffs, metrics and plots
    model: mlflow.pyfunc.PyFuncModel
    training_run_id: str = ""  # the training run both champions of a pair come from

    @property
    def fitted(self):
        """The fitted project model inside the pyfunc wrapper (for contributions)."""
        return self.model.unwrap_python_model().model

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """From the columns the model was logged with (more would only draw MLflow's warning)."""
        schema = self.model.metadata.get_input_schema()
        return np.asarray(self.model.predict(rows[schema.input_names()] if schema else rows))

    @property
    def input_names(self) -> list[str]:
        """The columns the model was logged with, in the order its Spark UDF takes them."""
        return self.model.metadata.get_input_schema().input_names()

    @guarded()
    def spark_udf(self, spark):
        """This registered version as a Spark UDF of `input_names` (in that order), one double
        per row, run in this process's Python environment (the Spark workers run the same
        one: pipeline/engines/session.py)."""
        return mlflow.pyfunc.spark_udf(spark, f"models:/{self.name}/{self.version}", result_type="double",
                                       env_manager="local")


@guarded()
def load_champion(client: MlflowClient, name: str, version: str | None = None) -> Champion:
    """The champion of a registered model (or, given, the version a pending promotion sets)."""
    try:
        found = client.get_model_version(name, version) if version else client.get_model_version_by_alias(name,
                                                                                                          CHAMPION)
    except MlflowException as exc:
        if store_failure(exc, current_config()):
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
    return Champion(name, str(found.version), found.run_id, model, training_run_of(client, found.run_id))


def training_run_of(client: MlflowClient, run_id: str) -> str:
    """The training run a model's run belongs to (its parent; itself for older runs)."""
    return client.get_run(run_id).data.tags.get("mlflow.parentRunId", run_id)


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


# Models registered before MLflow moved into this package pickled their wrapper by the name
# models.packaging.PyfuncModel; that name still finds the class, so their champions load
# (and score exactly as before) instead of being unreadable after an upgrade.
sys.modules.setdefault("models.packaging", sys.modules[__name__])
