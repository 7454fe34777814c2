"""Tuning: objectives are plain functions (FixedTrial), studies resume, and the best
parameters reach `churn train`."""

from __future__ import annotations

import datetime as dt

import optuna
import pytest
import yaml

from features.catalog import feature_catalog
from features.model_input import all_cutoffs, build_training_frame
from models.tuning import churn_objective, clv_objective
from pipeline.config import load_config
from pipeline.tables import load_tables
from pipeline.train import training_plans
from pipeline.tune import run_tuning, tuning_data
from tests.conftest import RUN_AT

PARAMS = {"learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 20, "colsample_bytree": 0.8,
          "subsample": 0.8, "reg_lambda": 1.0}


@pytest.fixture(scope="module")
def demo_backtest(demo_run):
    cfg = load_config(demo_run / "config.yaml")
    tables = load_tables(cfg.data.path, RUN_AT, None)
    plans = training_plans(tables, cfg)
    frame = build_training_frame(tables, cfg, all_cutoffs(plans.values()))
    names = [f.name for f in feature_catalog(cfg.features) if f.name in frame]
    return cfg, tables, {kind: tuning_data(frame, plan, kind, names, cfg) for kind, plan in plans.items()}


def test_objectives_are_plain_functions_of_a_trial_and_data(demo_backtest):
    _, _, data = demo_backtest
    auc = churn_objective(optuna.trial.FixedTrial(PARAMS), data["churn"], seed=1)
    assert 0.8 < auc <= 1.0
    assert churn_objective(optuna.trial.FixedTrial(PARAMS), data["churn"], seed=1) == auc  # seeded
    assert clv_objective(optuna.trial.FixedTrial(PARAMS), data["clv"], seed=1) > 0


def test_the_objective_is_judged_on_every_backtest_origin_with_labels_known_before_it(demo_backtest):
    cfg, _, data = demo_backtest
    folds = data["churn"].folds
    assert len(folds) == cfg.training.backtest_origins
    horizon = dt.timedelta(days=cfg.churn.horizon_days)
    for fold in folds:
        assert (fold.training["cutoff_date"].dt.date + horizon <= fold.origin_date).all()
        assert (fold.origin["cutoff_date"].dt.date == fold.origin_date).all()


def test_a_tiny_study_resumes_and_train_picks_up_the_result(demo_backtest, tmp_path):
    cfg, tables, _ = demo_backtest
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"tuned_params_path": tmp_path / "tuned.yaml"})})
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_tuning(tables, cfg, trials=2, timeout_s=None, storage=storage)
    run_tuning(tables, cfg, trials=1, timeout_s=None, storage=storage)  # resumes the same studies
    studies = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    assert sorted(studies.values()) == [3, 3] and all(name.startswith(("churn-", "clv-")) for name in studies)
    best = yaml.safe_load((tmp_path / "tuned.yaml").read_text())
    assert set(best) == {"churn", "clv"} and {"learning_rate", "num_leaves", "n_estimators"} <= set(best["churn"])
