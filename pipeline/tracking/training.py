"""What a training or tuning run logs, the promotion policy, and reading past runs."""


from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from features.model_input import CutoffPlan
from models.evaluation import Evaluation
from models.metrics import auc_gain_interval, churn_metrics, clv_metrics, spearman_gain_interval
from pipeline import errors
from pipeline.config import Config, PromotionConfig, TrackingConfig
from pipeline.logs import mask_credentials, mask_secrets, stage
from pipeline.tracking.registry import Champion, champion_or_none, log_model, repair_champions, set_champions
from pipeline.tracking.runs import tracked_run
from pipeline.tracking.store import git_commit, guarded, sqlite_path

log = logging.getLogger(__name__)


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
