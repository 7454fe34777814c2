"""Tuning: objectives are plain functions (FixedTrial), studies resume, and the best
parameters reach `churn train`."""

from __future__ import annotations

import datetime as dt

import optuna
import pytest
import yaml

from features.catalog import feature_catalog
from features.model_input import build_training_frame, plan_cutoffs, rows_at
from models.evaluation import fit_lifetime_model
from models.lifetime import LIFETIME_FEATURES
from models.tuning import TuningData, churn_objective, clv_objective
from pipeline.config import load_config
from pipeline.tables import load_tables
from pipeline.tune import run_tuning
from tests.conftest import RUN_AT

PARAMS = {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "colsample_bytree": 0.8,
          "subsample": 0.8, "reg_lambda": 1.0}


@pytest.fixture(scope="module")
def tuning_data(demo_run):
    cfg = load_config(demo_run / "config.yaml")
    tables = load_tables(cfg.data.path, RUN_AT, None)
    plan = plan_cutoffs(tables.last_event_at().date(), cfg.training, cfg.churn.horizon_days)
    frame = build_training_frame(tables, cfg, plan.training)
    fit, holdout = rows_at(frame, plan.fit), rows_at(frame, [plan.holdout])
    lifetime = fit_lifetime_model(fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
    fit, holdout = lifetime.enrich(fit), lifetime.enrich(holdout)
    names = [f.name for f in feature_catalog(cfg.features) if f.name in frame] + list(LIFETIME_FEATURES)
    return cfg, tables, fit, holdout, names


def test_objectives_are_plain_functions_of_a_trial_and_data(tuning_data):
    _, _, fit, holdout, names = tuning_data
    churn_data = TuningData(fit, fit["is_churned"], holdout, holdout["is_churned"], names)
    auc = churn_objective(optuna.trial.FixedTrial(PARAMS), churn_data, seed=1)
    assert 0.8 < auc <= 1.0
    assert churn_objective(optuna.trial.FixedTrial(PARAMS), churn_data, seed=1) == auc  # seeded
    clv_data = TuningData(fit, fit["future_revenue"], holdout, holdout["future_revenue"], names)
    assert clv_objective(optuna.trial.FixedTrial(PARAMS), clv_data, seed=1) > 0


def test_a_tiny_study_resumes_and_train_picks_up_the_result(tuning_data, tmp_path):
    cfg, tables, *_ = tuning_data
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"tuned_params_path": tmp_path / "tuned.yaml"})})
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_tuning(tables, cfg, trials=2, timeout_s=None, storage=storage)
    run_tuning(tables, cfg, trials=1, timeout_s=None, storage=storage)  # resumes the same studies
    studies = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    assert sorted(studies.values()) == [3, 3] and all(name.startswith(("churn-", "clv-")) for name in studies)
    best = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert set(best) == {"churn", "clv"} and {"learning_rate", "num_leaves", "n_estimators"} <= set(best["churn"])


def test_plan_cutoffs_keeps_training_labels_out_of_the_validation_window(tuning_data):
    cfg, *_ = tuning_data
    plan = plan_cutoffs(dt.date(2025, 12, 31), cfg.training, 90)
    assert plan.validation == dt.date(2025, 10, 1)
    assert plan.holdout + dt.timedelta(days=90) <= plan.validation
    assert plan.training == sorted(plan.training) and len(plan.training) == cfg.training.cutoffs
