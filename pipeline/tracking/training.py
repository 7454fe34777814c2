"""What a training or tuning run logs, the promotion policy, and reading past runs."""


from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from features.model_input import CutoffPlan
from models.evaluation import Evaluation
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
    """What a training run logs: both evaluations (backtest and refit), the cutoff plans,
    the rows of the freshest cutoff (input examples) and the inputs."""

    churn: Evaluation
    clv: Evaluation
    plans: dict[str, CutoffPlan]
    example_rows: dict[str, pd.DataFrame]
    training_rows: int
    data_fingerprint: dict
    config_text: str
    config_name: str = "config"
    frame: pd.DataFrame | None = None  # the training frame, recorded as the run's input dataset

    def per_origin(self, kind: str) -> list[dict]:
        """Each backtest origin's date and metrics of the candidate that ships."""
        evaluation = getattr(self, kind)
        return [{"origin": origin.isoformat()} | metrics
                for origin, metrics in zip(evaluation.backtest.origins, evaluation.per_origin, strict=True)]


KINDS = ("churn", "clv")
PRIMARY = {"churn": "roc_auc", "clv": "spearman"}


def data_name(path: Path) -> str:
    """The data folder as a person names it: its last two parts (data/demo, w1/export)."""
    return "/".join(Path(path).parts[-2:])


def run_name(cfg: Config, trained: TrainedModels) -> str:
    """What the run trained, readable in the MLflow runs table: config, data, freshest labels."""
    plan = trained.plans["churn"]
    return (f"{trained.config_name} | {data_name(cfg.data.path)} | labels to {plan.production[-1]} | "
            f"churn {trained.churn.backtest.chosen}, clv {trained.clv.backtest.chosen}")


def run_params(cfg: Config, trained: TrainedModels) -> dict[str, object]:
    """The parameters a data scientist filters and compares runs by."""
    params: dict[str, object] = {
        "seed": cfg.model.seed, "training_rows": trained.training_rows, "churn_definition": cfg.churn.definition,
        "churn_horizon_days": cfg.churn.horizon_days, "clv_horizon_days": cfg.clv.horizon_days,
        "active_lookback_days": cfg.churn.active_lookback_days, "training_cutoffs": cfg.training.cutoffs,
        "spacing_days": cfg.training.spacing_days, "backtest_origins": cfg.training.backtest_origins,
        "selection_tolerance": cfg.training.selection_tolerance,
        "training_max_customers": cfg.training.max_customers or "all",
    }
    for kind in KINDS:
        evaluation, plan = getattr(trained, kind), trained.plans[kind]
        chosen = evaluation.backtest.results[evaluation.backtest.chosen]
        params |= {f"{kind}_candidate": chosen.name, f"{kind}_setting": chosen.setting,
                   f"{kind}_refit_cutoffs": f"{plan.production[0]}..{plan.production[-1]}",
                   f"{kind}_backtest_origins": ",".join(str(o) for o in evaluation.backtest.origins)}
        params |= {f"{kind}_{k}": v for k, v in chosen.params.items() if k != "parts"}
        if chosen.name == "blend":
            weights = evaluation.model.scorer.weights
            params[f"{kind}_blend_weights"] = ",".join(f"{n}={w:.3f}" for n, w in weights.items())
    return params


def version_description(kind: str, cfg: Config, trained: TrainedModels) -> str:
    """What a registered version is: data, candidate, refit cutoffs and backtest figures."""
    evaluation, plan = getattr(trained, kind), trained.plans[kind]
    result, metric = evaluation.backtest, PRIMARY[kind]
    origins = result.origins
    calibration = f", ECE {evaluation.metrics['ece']:.4f}" if kind == "churn" else ""
    return (f"{kind} model: candidate {result.chosen} ({result.results[result.chosen].setting}), refit on "
            f"{len(plan.production)} cutoffs {plan.production[0]}..{plan.production[-1]} of "
            f"{data_name(cfg.data.path)} ({cfg.churn.definition} churn, {plan.horizon_days}-day horizon). "
            f"Walk-forward backtest over {len(origins)} origins {origins[0]}..{origins[-1]}: {metric} "
            f"{evaluation.metrics[metric]:.4f}{calibration}. Why this candidate: {result.why}.")


def log_training_run(cfg: Config, trained: TrainedModels, promote: str) -> dict:
    """Log one MLflow run of the training (config, cutoffs, data, parameters, both models'
    backtest means) with one child run per model (its backtest per origin, candidate table,
    plots, and the logged model, which so carries only its own metrics); register both
    models with a description and apply the promotion policy; return the run summary."""
    models = {"churn": trained.churn, "clv": trained.clv}
    names = {"churn": cfg.tracking.churn_model_name, "clv": cfg.tracking.clv_model_name}
    with tracked_run(cfg.tracking, run_name(cfg, trained)) as (client, run):
        repair_champions(client, cfg.tracking)
        mlflow.set_tags({"git_commit": git_commit(), "churn_definition": cfg.churn.definition,
                         "churn_candidate": trained.churn.backtest.chosen,
                         "clv_candidate": trained.clv.backtest.chosen})
        log_run_inputs(cfg, trained)
        mlflow.log_params(run_params(cfg, trained))
        for prefix, result in models.items():  # the means, to compare training runs in the runs table
            mlflow.log_metrics({f"{prefix}_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
        versions = {}
        with stage("log and register models"):
            for kind in KINDS:
                versions[kind] = log_model_run(client, cfg, trained, kind, names[kind])
        decision = decide_promotion(client, cfg, trained, versions, promote)
        mlflow.log_dict(decision, "promotion.json")
        mlflow.set_tag("mlflow.note.content", "\n\n".join(  # the run's Description in the UI
            [version_description(kind, cfg, trained) for kind in KINDS] + [f"Promotion: {decision['why']}."]))
        if decision["promoted"]:
            set_champions(client, cfg.tracking, {names[kind]: versions[kind] for kind in models}, run.info.run_id)
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "churn": trained.churn.metrics,
            "clv": trained.clv.metrics,
            "promotion": decision, "rows": trained.training_rows, "churn_plan": trained.plans["churn"].as_dict(),
            "candidates": {kind: getattr(trained, kind).backtest.chosen for kind in KINDS}}


def log_run_inputs(cfg: Config, trained: TrainedModels) -> None:
    """What the run learned from: config, cutoffs, data fingerprint, the input dataset."""
    mlflow.log_text(mask_credentials(trained.config_text), "config.yaml")
    mlflow.log_dict(mask_secrets(cfg.model_dump(mode="json")), "resolved_config.json")
    mlflow.log_dict({name: plan.as_dict() for name, plan in trained.plans.items()}, "cutoffs.json")
    mlflow.log_dict(mask_secrets(trained.data_fingerprint), "data_fingerprint.json")
    mlflow.log_dict({kind: trained.per_origin(kind) for kind in KINDS}, "backtest.json")
    log_input_data(cfg, trained)


def log_model_run(client: MlflowClient, cfg: Config, trained: TrainedModels, kind: str, name: str) -> str:
    """One model's child run: its metrics (mean and per origin), tables, plots and the logged,
    registered model with its description; return the new version."""
    result = getattr(trained, kind)
    with mlflow.start_run(run_name=f"{kind} | {result.backtest.chosen}", nested=True):
        mlflow.set_tags({"model_kind": kind, "candidate": result.backtest.chosen})
        mlflow.log_params({k: v for k, v in run_params(cfg, trained).items() if not k.startswith(_other(kind))})
        mlflow.log_dict({n: plan.as_dict() for n, plan in trained.plans.items()}, "cutoffs.json")
        mlflow.log_dict({kind: trained.per_origin(kind)}, "backtest.json")
        mlflow.log_dict({kind: list(result.model.schema.names)}, "features.json")
        mlflow.log_metrics({f"{kind}_{k}": v for k, v in result.metrics.items() if np.isfinite(v)})
        for step, metrics in enumerate(result.per_origin):  # one point per origin: a chart per metric
            mlflow.log_metrics({f"{kind}_backtest_{k}": v for k, v in metrics.items()
                                if np.isfinite(v) and not k.startswith("candidate_")}, step=step)
        for figure_name, figure in result.figures.items():
            mlflow.log_figure(figure, f"plots/{figure_name}")
        for table_name, table in result.tables.items():
            mlflow.log_table(table, f"{table_name}.json")
        info = log_model(result.model, name, result.model.example_input(trained.example_rows[kind]))
    version = str(info.registered_model_version)
    client.update_model_version(name, version, description=version_description(kind, cfg, trained))
    return version


def _other(kind: str) -> str:
    return {"churn": "clv_", "clv": "churn_"}[kind]


def log_input_data(cfg: Config, trained: TrainedModels) -> None:
    """Record the training frame as the run's input dataset (its schema and size; the digest
    is the input tables' fingerprint, so runs on the same data show the same dataset)."""
    if trained.frame is None:
        return
    digest = hashlib.sha256(json.dumps(trained.data_fingerprint, sort_keys=True, default=str).encode()).hexdigest()
    with warnings.catch_warnings():
        # MLflow muses on which kind of source a local path is, and on integer columns
        # (the counts, which are never missing): neither is news to the user.
        warnings.simplefilter("ignore", UserWarning)
        dataset = mlflow.data.from_pandas(trained.frame, source=mask_credentials(str(cfg.data.path)),
                                          name=f"{data_name(cfg.data.path)} training frame", targets="is_churned",
                                          digest=digest[:16])
        mlflow.log_input(dataset, context="training")


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
    """The verdict on one model of the run against its champion, on the backtest origins both
    runs were judged on."""
    if current is None:
        return {"passed": True, "rule": "no champion", "why": "no champion yet"}
    theirs = champion_backtest(current.run_id, kind)
    if not theirs:
        return {"passed": True, "rule": "champion without backtest", "champion_version": current.version,
                "why": f"champion v{current.version} was trained before the walk-forward backtest existed"}
    return promotion_verdict(kind, trained.per_origin(kind), theirs, cfg.promotion, current.version)


@guarded()
def champion_backtest(run_id: str, kind: str) -> list[dict]:
    """The per-origin backtest a training run logged ([] for runs older than the backtest)."""
    try:
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/backtest.json").get(kind, [])
    except Exception:  # noqa: BLE001 - an older run without the file
        return []


def promotion_verdict(kind: str, ours: list[dict], theirs: list[dict], rules: PromotionConfig,
                      champion_version: str) -> dict:
    """Does the new model beat the champion on the backtest? Paired on the origins both runs
    were judged on: by `min_gain` (mean ROC AUC for churn, Spearman for CLV) or with every
    shared origin ahead and the mean gain above two standard errors; for churn, with a mean
    ECE at most `max_ece_increase` above the champion's. Without shared origins (the champion
    is from older data), the new model passes unless it trails by more than `min_gain`."""
    metric = PRIMARY[kind]
    old = {row["origin"]: row for row in theirs}
    shared = [row for row in ours if row["origin"] in old]
    if shared:
        gains = np.array([row[metric] - old[row["origin"]][metric] for row in shared])
        ece = (np.mean([row["ece"] - old[row["origin"]]["ece"] for row in shared]) if kind == "churn" else 0.0)
        se = float(np.std(gains, ddof=1) / np.sqrt(len(gains))) if len(gains) > 1 else float("inf")
        gain = float(gains.mean())
        rule = ("min_gain" if gain >= rules.min_gain else "interval" if (gains > 0).all() and gain > 2 * se
                else "no clear gain")
    else:
        gain = float(np.mean([r[metric] for r in ours]) - np.mean([r[metric] for r in theirs]))
        ece = (float(np.mean([r["ece"] for r in ours]) - np.mean([r["ece"] for r in theirs])) if kind == "churn"
               else 0.0)
        se, rule = float("nan"), "fresher labels" if gain > -rules.min_gain else "no clear gain"
    if kind == "churn" and rule != "no clear gain" and ece > rules.max_ece_increase:
        rule = "ece"
    passed = rule in ("min_gain", "interval", "fresher labels")
    why = (f"backtest {metric} {np.mean([r[metric] for r in ours]):.4f} vs champion v{champion_version} "
           f"{np.mean([r[metric] for r in theirs]):.4f} ({len(shared)} shared origins), gain {gain:+.4f} "
           f"({'>=' if gain >= rules.min_gain else '<'} min_gain {rules.min_gain:g})"
           + (f"; ECE change {ece:+.4f} (at most +{rules.max_ece_increase:g})" if kind == "churn" else ""))
    return {"passed": passed, "rule": rule, "why": f"{'passes' if passed else 'fails'} by {rule}: {why}",
            "champion_version": champion_version, "metric": metric, "gain": gain, "gain_se": se,
            "shared_origins": len(shared), "min_gain": rules.min_gain} | (
        {"ece_increase": float(ece), "max_ece_increase": rules.max_ece_increase} if kind == "churn" else {})


def log_tuning_result(model: str, best_params: dict, metric: str, best_value: float) -> None:
    mlflow.log_params({f"{model}_{k}": v for k, v in best_params.items()})
    mlflow.log_metric(f"{model}_best_backtest_{metric}", best_value)


@guarded()
def training_cutoffs_of(run_id: str) -> tuple[list[dt.date], dt.date | None]:
    """The churn cutoffs a training run's model learned from (logged as cutoffs.json), and
    the cutoff it was validated on (None since the walk-forward backtest: the model that
    ships is refit on the freshest cutoffs, and judged by the backtest's own models)."""
    try:
        plan = mlflow.artifacts.load_dict(f"runs:/{run_id}/cutoffs.json")["churn"]
        if "production" in plan:
            return [dt.date.fromisoformat(c) for c in plan["production"]], None
        return [dt.date.fromisoformat(c) for c in plan["training"]], dt.date.fromisoformat(plan["validation"])
    except Exception as exc:  # noqa: BLE001 - an older run without the file: roles unknown
        log.warning("cannot read the champion's training cutoffs (%s); roles are left open", exc)
        return [], None


def store_exists(cfg: TrackingConfig) -> bool:
    """A local SQLite store that does not exist yet has no champion (and asking MLflow
    would create it): sqlite:///relative.db or sqlite:////absolute.db."""
    path = sqlite_path(cfg.resolved_uri())
    return path is None or path.is_file()
