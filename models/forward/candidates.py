"""The candidate models that compete on the walk-forward backtest, simplest first.

Churn: the BG/NBD score, a regularised logistic regression, LightGBM, and a blend of them.
CLV: BG/NBD x Gamma-Gamma, LightGBM with a Tweedie loss, and a blend of both. Each
candidate has a few settings (the logistic regression's strength, LightGBM's complexity
scaled to the data); the backtest picks them. A candidate here is only how to fit one on
the training rows of a fold (or of the production refit) with one setting."""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.baselines import train_logistic_baselines
from models.forward.scorers import BoosterScorer, LifetimeScorer, LinearScorer, clipped_logit
from models.schema import FeatureSchema

CHURN, CLV = "churn", "clv"
MAX_ROUNDS = 400
PATIENCE = 60  # boosting rounds without gain on the origin before a fold stops growing trees
LEARNING_RATE = 0.05

LIGHTGBM_BASE: dict[str, dict] = {
    # One thread: LightGBM's OpenMP threads wait for each other at every step, and on a shared
    # or busy 2-core machine (a parallel test run, a neighbour's job) two threads were seen
    # running 100x slower. Set n_jobs in model.churn_params on a dedicated machine.
    CHURN: {"n_jobs": 1, "learning_rate": LEARNING_RATE, "subsample": 0.8, "subsample_freq": 1,
            "colsample_bytree": 0.8, "metric": "auc"},
    CLV: {"n_jobs": 1, "learning_rate": LEARNING_RATE, "subsample": 0.8, "subsample_freq": 1,
          "colsample_bytree": 0.8, "objective": "tweedie", "tweedie_variance_power": 1.3, "metric": "tweedie"},
}
EVAL_METRIC = {CHURN: ("auc", True), CLV: ("tweedie", False)}  # (LightGBM metric, higher is better)


@dataclass(frozen=True)
class Candidate:
    """One family of model: `settings` are tried on the backtest, simplest first."""

    name: str
    complexity: int  # 1 is the simplest; a more complex candidate must beat the simpler ones
    description: str


CHURN_CANDIDATES = [
    Candidate("bgnbd", 1, "BG/NBD probability of no purchase within the horizon"),
    Candidate("logistic", 2, "regularised logistic regression on every feature (signed log, standardised)"),
    Candidate("lightgbm", 3, "LightGBM, complexity chosen by the backtest"),
    Candidate("blend", 4, "non-negative logistic stack of the other candidates' log-odds"),
]
CLV_CANDIDATES = [
    Candidate("bgnbd_gamma_gamma", 1, "BG/NBD x Gamma-Gamma expected revenue"),
    Candidate("lightgbm", 2, "LightGBM with a Tweedie loss, complexity chosen by the backtest"),
    Candidate("blend", 3, "geometric mean of the other candidates, each scaled to the realised revenue"),
]
LIFETIME_COLUMN = {CHURN: "bgnbd_probability_no_purchase", CLV: "bgnbd_gamma_gamma_clv"}
LOGISTIC_STRENGTHS = (0.05, 0.5)  # inverse regularisation strength, strongest regularisation first
# A linear model of a few hundred coefficients has settled long before this many rows; its
# transformed matrix (float64, with missing-value indicators) would otherwise be the largest
# object of a training run at a million customers.
LOGISTIC_MAX_ROWS = 100_000


def lightgbm_settings(seed: int) -> dict:
    """Settings that make a fit reproducible on any machine with the locked versions."""
    return {"random_state": seed, "deterministic": True, "force_row_wise": True, "verbose": -1}


def lightgbm_grid(training_rows: int, tuned: dict | None = None, explicit: dict | None = None) -> dict[str, dict]:
    """LightGBM's complexity, scaled to the data: leaves from 4 to 63, and a minimum leaf
    size that grows with the square root of the training rows (2,000 rows: 90 / 45 / 22;
    1M rows: 2,000 / 1,000 / 500), so small data gets smoothed trees and big data may
    split finely. `churn tune`'s best setting joins as one more point; parameters given
    explicitly in the config apply over every point."""
    root = math.sqrt(max(training_rows, 1))
    grid = {
        "shallow": {"num_leaves": 4, "min_child_samples": max(20, round(2 * root)), "reg_lambda": 10.0},
        "medium": {"num_leaves": 15, "min_child_samples": max(20, round(root)), "reg_lambda": 3.0},
        "deep": {"num_leaves": 63, "min_child_samples": max(20, round(root / 2)), "reg_lambda": 1.0},
    }
    if tuned:
        grid["tuned"] = dict(tuned)
    return {name: params | (explicit or {}) for name, params in grid.items()}


def fit_booster(kind: str, params: dict, seed: int, frame: pd.DataFrame, target: pd.Series, features: list[str],
                rounds: int | None = None, eval_frame: pd.DataFrame | None = None,
                eval_target: pd.Series | None = None) -> tuple[BoosterScorer, list[float]]:
    """Fit LightGBM on `frame`. With an evaluation frame (a backtest origin), grow up to
    MAX_ROUNDS trees and return the metric after every round; without one (the refit),
    grow exactly `rounds`."""
    schema = FeatureSchema.from_frame(frame, features)
    settings = LIGHTGBM_BASE[kind] | {k: v for k, v in params.items() if k != "n_estimators"}
    estimator = (lgb.LGBMClassifier if kind == CHURN else lgb.LGBMRegressor)(
        n_estimators=rounds or int(params.get("n_estimators", MAX_ROUNDS)), **settings, **lightgbm_settings(seed))
    y = target if kind == CHURN else target.clip(lower=0)  # Tweedie needs non-negative revenue
    if eval_frame is None:
        estimator.fit(schema.prepare(frame), y)
        return BoosterScorer(schema, estimator, rounds or estimator.n_estimators), []
    eval_y = eval_target if kind == CHURN else eval_target.clip(lower=0)
    metric, higher = EVAL_METRIC[kind]
    estimator.fit(schema.prepare(frame), y, eval_X=schema.prepare(eval_frame), eval_y=eval_y,
                  callbacks=[stop_without_gain(PATIENCE, higher)])
    curve = list(estimator.evals_result_["valid_0"][metric])
    return BoosterScorer(schema, estimator, len(curve)), curve


def stop_without_gain(patience: int, higher_is_better: bool):
    """Stop growing trees after `patience` rounds without a better metric, keeping every tree
    grown (LightGBM's own early stopping keeps only those up to the best round, which the
    backtest must not choose per fold)."""
    best = {"value": None, "round": 0}

    def callback(env: lgb.callback.CallbackEnv) -> None:
        value = env.evaluation_result_list[0][2]
        if best["value"] is None or (value > best["value"] if higher_is_better else value < best["value"]):
            best["value"], best["round"] = value, env.iteration
        elif env.iteration - best["round"] >= patience:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    callback.order = 30
    return callback


def best_rounds(curves: list[list[float]], higher_is_better: bool) -> int:
    """The number of rounds that is best on average over the folds (a fold that stopped
    early keeps its last value: no gain was left there)."""
    longest = max(len(c) for c in curves)
    padded = np.array([c + [c[-1]] * (longest - len(c)) for c in curves])
    mean = padded.mean(axis=0)
    return int(np.argmax(mean) if higher_is_better else np.argmin(mean)) + 1


def fit_logistic(frame: pd.DataFrame, target: pd.Series, features: list[str], seed: int,
                 strength: float) -> LinearScorer:
    return fit_logistic_path(frame, target, features, seed, (strength,))[strength]


def fit_logistic_path(frame: pd.DataFrame, target: pd.Series, features: list[str], seed: int,
                      strengths: tuple[float, ...]) -> dict[float, LinearScorer]:
    """One logistic regression per strength, on one shared transformation of the columns
    (fitted on a seeded sample of LOGISTIC_MAX_ROWS rows when there are more)."""
    if len(frame) > LOGISTIC_MAX_ROWS:
        frame = frame.sample(LOGISTIC_MAX_ROWS, random_state=seed)
        target = target.loc[frame.index]
    pipelines = train_logistic_baselines(frame, target, features, seed, strengths)
    return {strength: LinearScorer.fitted(p, p.schema, frame) for strength, p in pipelines.items()}


def fit_lifetime(kind: str, frame: pd.DataFrame) -> LifetimeScorer:
    column = LIFETIME_COLUMN[kind]
    fill = float(np.nanmean(clipped_logit(frame[column].to_numpy(dtype=float)))) if kind == CHURN else 0.0
    return LifetimeScorer(column, 0.0 if np.isnan(fill) else fill)
