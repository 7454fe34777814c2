"""Fit a model on the training cutoffs and judge it, beside its baselines, on the held-out
validation cutoff: the numbers and pictures a training run logs.

Pure functions of frames: no disk, no MLflow (pipeline/tracking/ logs what they return)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.feature import Feature
from models import plots
from models.baselines import overdue_rule_score, predict_logistic_baseline, train_logistic_baseline
from models.churn import ChurnModel, train_churn_model
from models.clv import ClvModel, train_clv_model
from models.lifetime import LifetimeModel
from models.metrics import auc_gain_interval, churn_metrics, clv_metrics, decile_table
from models.practice_formula import DAYS_PER_YEAR, expected_lifespan_years, practice_clv
from models.reason_check import count_contradictions
from models.reason_families import FAMILIES
from models.reasons import top_reason_agreement, top_reasons

if TYPE_CHECKING:  # the split is built by features/model_input.py; only its shape matters here
    from features.model_input import Split

SHAP_SAMPLE_ROWS = 5_000


@dataclass
class Evaluation:
    model: ChurnModel | ClvModel
    metrics: dict[str, float]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def fit_lifetime_model(fit_rows: pd.DataFrame, churn_horizon_days: int, clv_horizon_days: int) -> LifetimeModel:
    """BG/NBD and Gamma-Gamma on the customers of the latest fitting cutoff (one row each)."""
    latest = fit_rows[fit_rows["cutoff_date"] == fit_rows["cutoff_date"].max()]
    return LifetimeModel.fit(latest, churn_horizon_days, clv_horizon_days)


def evaluate_churn(split: Split, features: list[str], params: dict, seed: int, lifetime: LifetimeModel,
                   catalog: list[Feature], oracle: np.ndarray | None = None,
                   reasons_per_customer: int | None = None) -> Evaluation:
    """The churn model, the logistic-regression, BG/NBD and overdue-rule baselines, and (on
    the demo world) the oracle, all on the same validation customers.

    `reason_contradictions` counts the reasons that contradict their customer's features
    (models/reason_check.py), written as scoring writes them, for every validation customer
    whatever their probability: a superset of any tier's list, so that no tier threshold is
    restated here. With `reasons_per_customer` None, every risk-raising family that has a
    reason is checked (a superset of any shorter list)."""
    label = "is_churned"
    model = train_churn_model(split.fit, split.fit[label], split.holdout, split.holdout[label], features, params,
                              seed, lifetime)
    logistic = train_logistic_baseline(split.fit, split.fit[label], features, seed)
    y = split.valid[label].to_numpy()
    scores = {
        "churn model": model.predict(split.valid),
        "logistic regression": predict_logistic_baseline(logistic, split.valid),
        "BG/NBD P(no purchase)": lifetime.features(split.valid)["bgnbd_probability_no_purchase"].to_numpy(),
        "overdue rule": overdue_rule_score(split.valid),
    }
    metrics = churn_metrics(y, scores["churn model"])
    metrics |= _prefixed("baseline_logistic", churn_metrics(y, scores["logistic regression"]), ("roc_auc", "pr_auc",
                                                                                                 "top_decile_lift"))
    metrics |= _prefixed("baseline_bgnbd", _ranking_metrics(y, scores["BG/NBD P(no purchase)"]),
                         ("roc_auc", "pr_auc", "top_decile_lift"))
    metrics |= _prefixed("baseline_overdue_rule", _ranking_metrics(y, scores["overdue rule"]), ("roc_auc", "pr_auc",
                                                                                                  "top_decile_lift"))
    for prefix, name in (("baseline_logistic", "logistic regression"), ("baseline_bgnbd", "BG/NBD P(no purchase)"),
                         ("baseline_overdue_rule", "overdue rule")):
        low, high = auc_gain_interval(y, scores["churn model"], _ranks(scores[name]), seed)
        metrics[f"{prefix}_auc_gain_ci_low"], metrics[f"{prefix}_auc_gain_ci_high"] = low, high
    if oracle is not None:
        scores["oracle (true probability)"] = oracle
        metrics |= _prefixed("oracle", churn_metrics(y, oracle), ("roc_auc", "pr_auc", "top_decile_lift"))
        metrics["auc_share_of_oracle"] = metrics["roc_auc"] / metrics["oracle_roc_auc"]
    # Exact SHAP on a sample: the summary plot, and the check of the fast path attributions
    # that the at-risk list's reasons use (same strongest reason for most customers).
    sample = split.valid.sample(min(len(split.valid), SHAP_SAMPLE_ROWS), random_state=seed).sort_index()
    shap = model.shap_values(sample)
    metrics["reason_agreement_with_shap"] = top_reason_agreement(model.contributions(sample), shap, catalog)
    metrics["reason_contradictions"] = reason_contradictions(model, split.valid, catalog,
                                                             reasons_per_customer or len(FAMILIES))
    figures = {
        "roc.png": plots.roc_figure(y, scores),
        "precision_recall.png": plots.precision_recall_figure(y, scores),
        "calibration.png": plots.calibration_figure(y, scores["churn model"]),
        "gains.png": plots.gains_figure(y, scores),
        "churn_importance.png": plots.importance_figure(
            model.schema.names, model.booster.booster_.feature_importance("gain"), "Churn model: importance (gain)"),
        "shap_summary.png": plots.shap_summary_figure(shap, sample),
    }
    return Evaluation(model, metrics, figures)


def reason_contradictions(model: ChurnModel, rows: pd.DataFrame, catalog: list[Feature], count: int) -> int:
    """How many of the reasons the list would give `rows` (against `rows` as the scored
    population) contradict the customers' own feature values."""
    texts, _ = top_reasons(rows, model.contributions(rows), catalog, count, population=rows)
    return count_contradictions(texts, rows, rows)


def evaluate_clv(split: Split, features: list[str], params: dict, seed: int, lifetime: LifetimeModel) -> Evaluation:
    """The CLV model, BG/NBD x Gamma-Gamma and the practice formula on the same customers."""
    label = "future_revenue"
    model = train_clv_model(split.fit, split.fit[label], split.holdout, split.holdout[label], features, params,
                            seed, lifetime)
    y = split.valid[label].to_numpy()
    predicted = model.predict(split.valid)
    metrics = clv_metrics(y, predicted)
    baselines = {
        "bgnbd_gamma_gamma": lifetime.features(split.valid)["bgnbd_gamma_gamma_clv"].fillna(0).to_numpy(),
        "practice_formula": practice_formula_clv(split, lifetime),
    }
    for name, prediction in baselines.items():
        metrics |= _prefixed(f"baseline_{name}", clv_metrics(y, prediction), ("spearman", "normalized_gini", "mae",
                                                                               "aggregate_error_pct"))
    deciles = decile_table(y, predicted)
    figures = {
        "clv_deciles.png": plots.decile_figure(deciles),
        "clv_importance.png": plots.importance_figure(
            model.schema.names, model.booster.booster_.feature_importance("gain"), "CLV model: importance (gain)"),
    }
    return Evaluation(model, metrics, figures, {"clv_deciles": deciles})


def practice_formula_clv(split: Split, lifetime: LifetimeModel) -> np.ndarray:
    """The practice formula (models/practice_formula.py) per validation customer over the CLV
    horizon, with the lifespan implied by the churn rate of the fitting cutoffs."""
    horizon_churn = float(np.clip(split.fit["is_churned"].mean(), 1e-6, 1))
    lifespan = expected_lifespan_years(horizon_churn, lifetime.churn_horizon_days)
    years_known = (split.valid["days_since_first_purchase"].clip(lower=30) / DAYS_PER_YEAR).clip(upper=1)
    per_year = split.valid["purchases_365d"] / years_known if "purchases_365d" in split.valid \
        else split.valid["purchases_total"] / years_known
    revenue = practice_clv(split.valid["average_order_value"].fillna(0), per_year, lifespan,
                           horizon_years=lifetime.clv_horizon_days / DAYS_PER_YEAR)
    return np.nan_to_num(revenue)


def _ranking_metrics(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """Metrics of a score that is a ranking, not a probability."""
    return churn_metrics(y, _ranks(score))


def _ranks(score: np.ndarray) -> np.ndarray:
    """Percentile ranks; NaN scores rank last."""
    score = np.asarray(score, dtype=float)
    filled = np.where(np.isnan(score), np.nanmin(score) if np.isfinite(score).any() else 0.0, score)
    return pd.Series(filled).rank(pct=True).to_numpy()


def _prefixed(prefix: str, metrics: dict[str, float], keep: tuple[str, ...]) -> dict[str, float]:
    return {f"{prefix}_{k}": metrics[k] for k in keep}
