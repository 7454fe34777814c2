"""MLflow, in one place: where runs and models are kept, what a training or tuning run logs,
how models are registered, the promotion policy, loading champions, and reading past runs.

The default store is a SQLite file in the project directory (nothing to start); a team
server is only a different `tracking.uri` (or MLFLOW_TRACKING_URI). The URI is always set
explicitly, so MLflow never falls back to a folder it picks itself."""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
from collections.abc import Callable
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
from models.metrics import churn_metrics, clv_metrics
from pipeline.config import Config, TrackingConfig
from pipeline.errors import ModelNotFoundError
from pipeline.logs import stage

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


class PyfuncModel(mlflow.pyfunc.PythonModel):
    """A fitted project model as an MLflow pyfunc model whose `predict` returns what scoring
    needs: calibrated churn probabilities, or predicted CLV. The fitted object inside is the
    one training evaluated; scoring unwraps it for per-customer contributions."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict(model_input)


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
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    except (ImportError, AttributeError) as exc:  # pickled against code that has since moved
        raise ModelNotFoundError(
            f"The '{CHAMPION}' version {version.version} of the registered model '{name}' was logged by an "
            f"older version of churn-pipeline and cannot be loaded ({exc}). Run `make train` to train and "
            "register a new champion."
        ) from exc
    return Champion(name, str(version.version), version.run_id, model)


def load_champions(cfg: TrackingConfig) -> tuple[Champion, Champion]:
    """The churn and CLV champions of the configured store."""
    client = start_tracking(cfg)
    churn, clv = load_champion(client, cfg.churn_model_name), load_champion(client, cfg.clv_model_name)
    log.info("champions: %s v%s, %s v%s", churn.name, churn.version, clv.name, clv.version)
    return churn, clv


def champion_or_none(client: MlflowClient, name: str) -> Champion | None:
    try:
        return load_champion(client, name)
    except ModelNotFoundError as exc:
        if client_has_alias(client, name):  # there is a champion, but it cannot be read
            log.warning("%s", exc)
        return None


def client_has_alias(client: MlflowClient, name: str) -> bool:
    try:
        client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return False
    return True


def set_champion(client: MlflowClient, name: str, version: str) -> None:
    client.set_registered_model_alias(name, CHAMPION, version)


# --- training runs --------------------------------------------------------------------


@dataclass
class TrainedModels:
    """What a training run produced and is logged with: both evaluations, the plans and
    validation rows they were judged on, and the inputs that make the run reproducible."""

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
    client = start_tracking(cfg.tracking)
    models = {"churn": trained.churn, "clv": trained.clv}
    with mlflow.start_run(run_name=f"train-{trained.plans['churn'].validation}") as run:
        mlflow.set_tags({"git_commit": git_commit(), "churn_definition": cfg.churn.definition})
        mlflow.log_text(trained.config_text, "config.yaml")
        mlflow.log_dict(cfg.model_dump(mode="json"), "resolved_config.json")
        mlflow.log_dict({name: plan.as_dict() for name, plan in trained.plans.items()}, "cutoffs.json")
        mlflow.log_dict(trained.data_fingerprint, "data_fingerprint.json")
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
            versions = {name: log_model(models[name].model, registered,
                                        models[name].model.example_input(trained.validation_rows[name]))
                        for name, registered in (("churn", cfg.tracking.churn_model_name),
                                                 ("clv", cfg.tracking.clv_model_name))}
        decisions = {
            "churn": promote_if_better(client, cfg.tracking.churn_model_name, versions["churn"],
                                       trained.validation_rows["churn"], "is_churned", trained.churn.metrics["roc_auc"],
                                       lambda y, p: churn_metrics(y, p)["roc_auc"], promote),
            "clv": promote_if_better(client, cfg.tracking.clv_model_name, versions["clv"],
                                     trained.validation_rows["clv"], "future_revenue", trained.clv.metrics["spearman"],
                                     lambda y, p: clv_metrics(y, p)["spearman"], promote),
        }
        mlflow.log_dict(decisions, "promotion.json")
    return {"run_id": run.info.run_id, "churn": trained.churn.metrics, "clv": trained.clv.metrics,
            "promotion": decisions, "rows": trained.training_rows, "churn_plan": trained.plans["churn"].as_dict()}


def promote_if_better(client: MlflowClient, name: str, version: str, valid: pd.DataFrame, label: str,
                      new_score: float, metric: Callable[[np.ndarray, np.ndarray], float], mode: str) -> dict:
    """The promotion policy: the new version becomes champion if it beats the current
    champion on the current validation cutoff (or there is none); `force` always, `never`
    never. Returns the decision, with the reason, as logged in promotion.json."""
    decision = {"version": version, "score": new_score}
    current = champion_or_none(client, name)
    if mode == "never":
        decision["promoted"], decision["why"] = False, "--promote never"
    elif mode == "force" or current is None:
        decision["promoted"] = True
        decision["why"] = "--promote force" if mode == "force" else "no champion yet"
    else:
        try:
            champion_score = metric(valid[label], current.model.predict(valid))
        except Exception as exc:  # noqa: BLE001 - an old champion may not read today's features; replace it
            champion_score = float("-inf")
            log.warning("champion %s v%s cannot score today's features (%s)", name, current.version, exc)
        decision["champion_version"], decision["champion_score"] = current.version, champion_score
        decision["promoted"] = new_score > champion_score
        decision["why"] = (f"{new_score:.4f} {'>' if decision['promoted'] else '<='} champion v{current.version}"
                           f" {champion_score:.4f} on the same validation cutoff")
    if decision["promoted"]:
        set_champion(client, name, version)
    log.info("%s v%s %s: %s", name, version, "promoted to champion" if decision["promoted"] else "not promoted",
             decision["why"])
    return decision


# --- tuning runs and past runs ----------------------------------------------------------


def start_tuning_run(cfg: TrackingConfig):
    """The MLflow run a tuning session logs its best parameters and scores into."""
    start_tracking(cfg)
    return mlflow.start_run(run_name=f"tune-{dt.date.today()}")


def log_tuning_result(model: str, best_params: dict, metric: str, best_value: float) -> None:
    mlflow.log_params({f"{model}_{k}": v for k, v in best_params.items()})
    mlflow.log_metric(f"{model}_best_holdout_{metric}", best_value)


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
    uri, prefix = cfg.resolved_uri(), "sqlite:///"
    return not uri.startswith(prefix) or Path(uri[len(prefix):]).is_file()
