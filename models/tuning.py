"""Optuna objectives for the churn and CLV boosters, on the walk-forward backtest.

Each objective is a plain function of a trial, its data and its seed, so it can be tested
with `optuna.trial.FixedTrial`. A trial's setting learns at every backtest origin only from
labels that ended by it and is judged on the origin (ROC AUC for churn, Tweedie deviance for
CLV, at the number of rounds that is best on average); the best setting joins LightGBM's
complexity grid in `churn train`, where it competes with the others. Hopeless trials are
pruned after each origin."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna

from models.forward import candidates as cands
from models.forward.backtest import LABEL, Fold


@dataclass(frozen=True)
class TuningData:
    kind: str  # churn | clv
    folds: list[Fold]
    feature_names: list[str]


def suggest_params(trial: optuna.Trial) -> dict:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 127, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 10, 400, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
    }


def backtest_objective(trial: optuna.Trial, data: TuningData, seed: int) -> float:
    """The mean over origins of the metric at the best common number of rounds."""
    params = suggest_params(trial)
    label, (_, higher) = LABEL[data.kind], cands.EVAL_METRIC[data.kind]
    curves = []
    for step, fold in enumerate(data.folds):
        _, curve = cands.fit_booster(data.kind, params, seed, fold.training, fold.training[label], data.feature_names,
                                     eval_frame=fold.origin, eval_target=fold.origin[label])
        curves.append(curve)
        trial.report(float(np.mean([max(c) if higher else min(c) for c in curves])), step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"after {step + 1} origin(s)")
    rounds = cands.best_rounds(curves, higher)
    trial.set_user_attr("best_iteration", rounds)
    return float(np.mean([c[min(rounds, len(c)) - 1] for c in curves]))


def churn_objective(trial: optuna.Trial, data: TuningData, seed: int) -> float:
    """Mean ROC AUC over the backtest origins (maximise)."""
    return backtest_objective(trial, data, seed)


def clv_objective(trial: optuna.Trial, data: TuningData, seed: int) -> float:
    """Mean Tweedie deviance over the backtest origins (minimise). The variance power stays
    fixed: deviances under different powers are on different scales and cannot be compared."""
    return backtest_objective(trial, data, seed)


def tuned_params(study: optuna.Study) -> dict:
    """Best parameters, with the number of rounds the backtest found for them."""
    best = study.best_trial
    return best.params | {"n_estimators": best.user_attrs.get("best_iteration", cands.MAX_ROUNDS)}
