"""Optuna objectives for the churn and CLV boosters.

Each objective is a plain function of a trial, its data and its seed, so it can be tested
with `optuna.trial.FixedTrial`. Time-based validation: boosters learn from the earlier
training cutoffs and are judged on the latest training cutoff; the validation cutoff that
training reports on is never seen while tuning. Hopeless trials are pruned on the way."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import optuna
import pandas as pd

from models import churn, clv
from models.churn import lightgbm_settings
from models.schema import FeatureSchema

REPORT_EVERY = 25  # boosting rounds between two reports to the pruner


@dataclass(frozen=True)
class TuningData:
    fit: pd.DataFrame
    fit_target: pd.Series
    holdout: pd.DataFrame
    holdout_target: pd.Series
    feature_names: list[str]


def suggest_params(trial: optuna.Trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 200, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    }


def _pruning_callback(trial: optuna.Trial, metric: str):
    def report(env: lgb.callback.CallbackEnv) -> None:
        if (env.iteration + 1) % REPORT_EVERY:
            return
        value = next(v for _, name, v, _ in env.evaluation_result_list if name == metric)
        trial.report(value, env.iteration + 1)
        if trial.should_prune():
            raise optuna.TrialPruned(f"{metric}={value:.4f} after {env.iteration + 1} rounds")
    return report


def _fit(trial: optuna.Trial, estimator, data: TuningData, metric: str, target_transform) -> np.ndarray:
    schema = FeatureSchema.from_frame(data.fit, data.feature_names)
    x_holdout = schema.prepare(data.holdout)
    estimator.fit(
        schema.prepare(data.fit), target_transform(data.fit_target),
        eval_X=x_holdout, eval_y=target_transform(data.holdout_target), eval_metric=metric,
        callbacks=[lgb.early_stopping(churn.EARLY_STOPPING_ROUNDS, verbose=False),
                   _pruning_callback(trial, metric)],
    )
    trial.set_user_attr("best_iteration", int(estimator.best_iteration_ or estimator.n_estimators))
    return x_holdout


def churn_objective(trial: optuna.Trial, data: TuningData, seed: int) -> float:
    """ROC AUC on the holdout cutoff (maximise)."""
    params = churn.DEFAULT_PARAMS | suggest_params(trial)
    booster = lgb.LGBMClassifier(**params, **lightgbm_settings(seed))
    _fit(trial, booster, data, "auc", lambda y: y)
    return float(booster.best_score_["valid_0"]["auc"])


def clv_objective(trial: optuna.Trial, data: TuningData, seed: int) -> float:
    """Tweedie deviance on the holdout cutoff (minimise). The variance power stays fixed:
    deviances under different powers are on different scales and cannot be compared."""
    params = clv.DEFAULT_PARAMS | suggest_params(trial)
    booster = lgb.LGBMRegressor(**params, **lightgbm_settings(seed))
    _fit(trial, booster, data, "tweedie", lambda y: y.clip(lower=0))
    return float(booster.best_score_["valid_0"]["tweedie"])


def tuned_params(study: optuna.Study) -> dict:
    """Best parameters, with the number of rounds early stopping found for them."""
    best = study.best_trial
    return best.params | {"n_estimators": best.user_attrs.get("best_iteration", churn.DEFAULT_PARAMS["n_estimators"])}
