"""`churn tune`: an Optuna study per model, persistent in SQLite so that an interrupted
study resumes; best parameters go to MLflow and to `model.tuned_params_path`, where
`churn train` picks them up (explicit `model.*_params` in the config still win)."""

from __future__ import annotations

import logging

import optuna
import yaml

from features.catalog import feature_catalog
from features.model_input import CutoffPlan, build_training_frame, plan_cutoffs, rows_at
from models.evaluation import fit_lifetime_model
from models.lifetime import LIFETIME_FEATURES
from models.tuning import TuningData, churn_objective, clv_objective, tuned_params
from pipeline import tracking
from pipeline.config import Config
from pipeline.files import atomic_write_text
from pipeline.logs import stage
from pipeline.tables import Tables

log = logging.getLogger(__name__)
# model: (direction, objective, label, what the objective measures)
STUDIES = {"churn": ("maximize", churn_objective, "is_churned", "auc"),
           "clv": ("minimize", clv_objective, "future_revenue", "tweedie")}


def run_tuning(tables: Tables, cfg: Config, trials: int, timeout_s: float | None, storage: str) -> dict:
    """Tune both models on their holdout cutoffs; write and return the best parameters."""
    data_end = tables.last_event_at().date()
    plans = {"churn": plan_cutoffs(data_end, cfg.training, cfg.churn.horizon_days),
             "clv": plan_cutoffs(data_end, cfg.training, cfg.clv.horizon_days)}
    with stage("build tuning frame") as info:
        frame = build_training_frame(tables, cfg, sorted({c for p in plans.values() for c in p.training}))
        info["rows"] = len(frame)
    features = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    best: dict[str, dict] = {}
    with tracking.start_tuning_run(cfg.tracking):
        for name, (direction, objective, label, measure) in STUDIES.items():
            data = tuning_data(frame, plans[name], label, features, cfg)
            study = run_study(f"{name}-{plans[name].validation}", direction, objective, data, trials, timeout_s,
                              storage, cfg.model.seed)
            best[name] = tuned_params(study)
            tracking.log_tuning_result(name, best[name], measure, study.best_value)
    atomic_write_text(yaml.safe_dump(best, sort_keys=True), cfg.model.tuned_params_path)
    log.info("best parameters written to %s; `churn train` uses them from now on", cfg.model.tuned_params_path)
    return best


def tuning_data(frame, plan: CutoffPlan, label: str, features: list[str], cfg: Config) -> TuningData:
    """The rows the models learn from and are judged on while tuning, with the lifetime
    model's outputs added exactly as training adds them."""
    fit, holdout = rows_at(frame, plan.fit), rows_at(frame, [plan.holdout])
    lifetime = fit_lifetime_model(fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
    fit, holdout = lifetime.enrich(fit), lifetime.enrich(holdout)
    return TuningData(fit, fit[label], holdout, holdout[label], [*features, *LIFETIME_FEATURES])


def run_study(study_name: str, direction: str, objective, data: TuningData, trials: int, timeout_s: float | None,
              storage: str, seed: int) -> optuna.Study:
    """Add `trials` trials to the named study (created or resumed from `storage`)."""
    study = optuna.create_study(
        study_name=study_name, storage=storage, load_if_exists=True, direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    done_before = len(study.trials)
    with stage(f"tune {study_name.split('-')[0]} ({trials} trials, resuming after {done_before})") as info:
        study.optimize(lambda t: objective(t, data, seed), n_trials=trials, timeout=timeout_s, gc_after_trial=True)
        states = [t.state for t in study.trials[done_before:]]
        info["complete"] = states.count(optuna.trial.TrialState.COMPLETE)
        info["pruned"] = states.count(optuna.trial.TrialState.PRUNED)
        info["best"] = round(study.best_value, 4)
    return study
