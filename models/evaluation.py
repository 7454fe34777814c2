"""Judge the candidates on the walk-forward backtest, refit the winner on the freshest
complete labels, and gather the numbers and pictures a training run logs.

Every figure here is forward: at each backtest origin, models learned only from labels
that ended by it, and were compared with what customers did after it.

Pure functions of frames: no disk, no MLflow (pipeline/tracking/ logs what they return)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.feature import Feature
from models import plots
from models.baselines import overdue_rule_score
from models.churn import ChurnModel, drift_reference, input_schema
from models.clv import ClvModel
from models.forward.backtest import Backtest, Fold, Progress, backtest, quietly, refit
from models.lifetime import LIFETIME_FEATURES, LifetimeModel
from models.metrics import churn_metrics, clv_metrics, decile_table
from models.practice_formula import DAYS_PER_YEAR, expected_lifespan_years, practice_clv
from models.reason_check import count_contradictions
from models.reason_families import FAMILIES
from models.reasons import top_reason_agreement, top_reasons

if TYPE_CHECKING:  # built by features/model_input.py; only their shape matters here
    from features.model_input import FoldRows

SHAP_SAMPLE_ROWS = 2_000
CHURN_METRICS = ("roc_auc", "pr_auc", "ece", "brier", "log_loss", "top_decile_lift", "capture_top_10pct",
                 "capture_top_20pct", "churn_rate")
CLV_METRICS = ("spearman", "normalized_gini", "mae", "rmse", "capture_top_10pct", "aggregate_error_pct")


@dataclass
class Evaluation:
    model: ChurnModel | ClvModel
    metrics: dict[str, float]
    figures: dict[str, Figure] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    backtest: Backtest | None = None
    # per origin, oldest first: {metric: value} of the candidate that ships (and baselines)
    per_origin: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Horizons:
    churn_days: int
    clv_days: int


def fit_lifetime_model(rows: pd.DataFrame, horizons: Horizons) -> LifetimeModel:
    """BG/NBD and Gamma-Gamma on the customers of the latest cutoff of `rows` (one row each)."""
    latest = rows[rows["cutoff_date"] == rows["cutoff_date"].max()]
    return LifetimeModel.fit(latest, horizons.churn_days, horizons.clv_days)


def enrich_folds(folds: list[FoldRows], horizons: Horizons) -> list[Fold]:
    """Each fold's rows with the outputs of a lifetime model fitted on its own training rows."""
    out = []
    for fold in folds:
        lifetime = fit_lifetime_model(fold.training, horizons)
        out.append(Fold(fold.origin_date, lifetime.enrich(fold.training), lifetime.enrich(fold.origin)))
    return out


@dataclass(frozen=True)
class Choice:
    """What the backtest may choose among, and how."""

    seed: int
    tolerance: float
    tuned: dict | None = None  # `churn tune`'s best LightGBM setting (one more grid point)
    explicit: dict | None = None  # LightGBM parameters given in the config (over every point)


Oracle = Callable[[pd.Series, dt.date], np.ndarray]  # customer ids, cutoff -> true churn probability


def evaluate_churn(folds: list[FoldRows], production: pd.DataFrame, features: list[str], choice: Choice,
                   horizons: Horizons, catalog: list[Feature], oracle: Oracle | None = None,
                   reasons_per_customer: int | None = None, progress: Progress = quietly) -> Evaluation:
    """The churn candidates on the backtest (LightGBM's fits reported through `progress`),
    and the winner refit on `production`.

    `reason_contradictions` counts the reasons that contradict their customer's features
    (models/reason_check.py), written as scoring writes them, for every customer of the
    latest origin whatever their probability (a superset of any tier's list)."""
    enriched = enrich_folds(folds, horizons)
    del folds  # the enriched copies hold the same rows: at a million customers, twice the memory otherwise
    result = backtest("churn", enriched, [*features, *LIFETIME_FEATURES], choice.seed, choice.tolerance,
                      choice.tuned, choice.explicit, progress)
    lifetime = fit_lifetime_model(production, horizons)
    rows = lifetime.enrich(production)
    scorer, calibrator = refit("churn", result, rows, [*features, *LIFETIME_FEATURES], choice.seed)
    model = ChurnModel(input_schema(production, features), scorer, calibrator, lifetime, result.chosen)
    freshest = production[production["cutoff_date"] == production["cutoff_date"].max()]
    model.reference = drift_reference(model, freshest)

    chosen = result.results[result.chosen]
    per_origin = []
    for k, fold in enumerate(enriched):
        y = result.targets[k]
        row = {name: chosen.fold_metrics[k][name] for name in CHURN_METRICS}
        row |= {f"candidate_{n}_{m}": r.fold_metrics[k][m] for n, r in result.results.items()
                for m in ("roc_auc", "pr_auc", "ece")}
        row["predicted_churn_rate"] = float(np.mean(chosen.calibrated[k]))
        row["customers"] = float(len(y))
        row["baseline_overdue_rule_roc_auc"] = churn_metrics(y, _ranks(overdue_rule_score(fold.origin)))["roc_auc"]
        if oracle is not None:
            row["oracle_roc_auc"] = churn_metrics(y, oracle(fold.origin["customer_id"], fold.origin_date))["roc_auc"]
        per_origin.append(row)
    metrics = _means(per_origin)
    metrics["roc_auc_std"] = float(np.std([r["roc_auc"] for r in per_origin]))
    metrics["baseline_logistic_roc_auc"] = metrics["candidate_logistic_roc_auc"]
    metrics["baseline_bgnbd_roc_auc"] = metrics["candidate_bgnbd_roc_auc"]
    if oracle is not None:
        metrics["auc_share_of_oracle"] = metrics["roc_auc"] / metrics["oracle_roc_auc"]
    metrics["backtest_origins"] = len(enriched)

    latest = enriched[-1].origin
    sample = latest.sample(min(len(latest), SHAP_SAMPLE_ROWS), random_state=choice.seed).sort_index()
    shap = model.shap_values(sample)
    metrics["reason_agreement_with_shap"] = top_reason_agreement(model.contributions(sample), shap, catalog)
    metrics["reason_contradictions"] = reason_contradictions(model, latest, catalog,
                                                             reasons_per_customer or len(FAMILIES))
    table = result.table()
    y_all = np.concatenate(result.targets)
    pooled = {f"{n} ({r.setting})": np.concatenate(r.calibrated) for n, r in result.results.items()}
    figures = {
        "backtest.png": plots.backtest_figure(table, "roc_auc", "Churn: ROC AUC at each backtest origin"),
        "roc.png": plots.roc_figure(y_all, pooled),
        "precision_recall.png": plots.precision_recall_figure(y_all, pooled),
        "calibration.png": plots.calibration_figure(y_all, np.concatenate(chosen.calibrated)),
        "gains.png": plots.gains_figure(y_all, pooled),
        "churn_importance.png": plots.importance_figure(list(model.importance().index),
                                                        model.importance().to_numpy(),
                                                        f"Churn model ({result.chosen}): importance"),
        "shap_summary.png": plots.shap_summary_figure(shap, sample),
    }
    return Evaluation(model, metrics, figures, {"churn_backtest": table}, result, per_origin)


def reason_contradictions(model: ChurnModel, rows: pd.DataFrame, catalog: list[Feature], count: int) -> int:
    """How many of the reasons the list would give `rows` (against `rows` as the scored
    population) contradict the customers' own feature values."""
    texts, _ = top_reasons(rows, model.contributions(rows), catalog, count, population=rows)
    return count_contradictions(texts, rows, rows)


def evaluate_clv(folds: list[FoldRows], production: pd.DataFrame, features: list[str], choice: Choice,
                 horizons: Horizons, progress: Progress = quietly) -> Evaluation:
    """The CLV candidates on the backtest (LightGBM's fits reported through `progress`),
    beside the practice formula, and the winner refit."""
    enriched = enrich_folds(folds, horizons)
    del folds  # as for churn
    result = backtest("clv", enriched, [*features, *LIFETIME_FEATURES], choice.seed, choice.tolerance,
                      choice.tuned, choice.explicit, progress)
    lifetime = fit_lifetime_model(production, horizons)
    scorer, calibrator = refit("clv", result, lifetime.enrich(production), [*features, *LIFETIME_FEATURES],
                               choice.seed)
    model = ClvModel(input_schema(production, features), scorer, calibrator, lifetime, result.chosen)

    chosen = result.results[result.chosen]
    per_origin = []
    for k, fold in enumerate(enriched):
        row = {name: chosen.fold_metrics[k][name] for name in CLV_METRICS}
        row |= {f"candidate_{n}_{m}": r.fold_metrics[k][m] for n, r in result.results.items()
                for m in ("spearman", "aggregate_error_pct")}
        row |= {"predicted_revenue": float(np.sum(chosen.calibrated[k])),
                "realised_revenue": float(np.sum(result.targets[k])), "customers": float(len(result.targets[k]))}
        # the churn rate of training rows whose churn window was over by the origin
        known = fold.training["cutoff_date"].dt.date + dt.timedelta(days=horizons.churn_days) <= fold.origin_date
        practice = practice_formula_clv(fold.training[known.to_numpy()], fold.origin, horizons)
        row |= {f"baseline_practice_formula_{m}": v for m, v in clv_metrics(result.targets[k], practice).items()
                if m in ("spearman", "aggregate_error_pct")}
        per_origin.append(row)
    metrics = _means(per_origin)
    metrics["spearman_std"] = float(np.std([r["spearman"] for r in per_origin]))
    metrics["baseline_bgnbd_gamma_gamma_spearman"] = metrics["candidate_bgnbd_gamma_gamma_spearman"]
    metrics["backtest_origins"] = len(enriched)
    y_all, predicted = np.concatenate(result.targets), np.concatenate(chosen.calibrated)
    deciles = decile_table(y_all, predicted)
    table = result.table()
    figures = {
        "clv_backtest.png": plots.backtest_figure(table, "spearman", "CLV: Spearman at each backtest origin"),
        "clv_deciles.png": plots.decile_figure(deciles),
        "clv_importance.png": plots.importance_figure(list(model.importance().index), model.importance().to_numpy(),
                                                      f"CLV model ({result.chosen}): importance"),
    }
    return Evaluation(model, metrics, figures, {"clv_deciles": deciles, "clv_backtest": table}, result, per_origin)


def practice_formula_clv(training: pd.DataFrame, origin: pd.DataFrame, horizons: Horizons) -> np.ndarray:
    """The practice formula (models/practice_formula.py) per origin customer over the CLV
    horizon, with the lifespan implied by the churn rate of the fold's training rows."""
    horizon_churn = float(np.clip(training["is_churned"].mean(), 1e-6, 1))
    lifespan = expected_lifespan_years(horizon_churn, horizons.churn_days)
    years_known = (origin["days_since_first_purchase"].clip(lower=30) / DAYS_PER_YEAR).clip(upper=1)
    per_year = origin["purchases_365d"] / years_known if "purchases_365d" in origin \
        else origin["purchases_total"] / years_known
    revenue = practice_clv(origin["average_order_value"].fillna(0), per_year, lifespan,
                           horizon_years=horizons.clv_days / DAYS_PER_YEAR)
    return np.nan_to_num(np.asarray(revenue, dtype=float))


def _means(per_origin: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(v) for k, v in pd.DataFrame(per_origin).mean().items()}


def _ranks(score: np.ndarray) -> np.ndarray:
    """Percentile ranks; NaN scores rank last."""
    score = np.asarray(score, dtype=float)
    filled = np.where(np.isnan(score), np.nanmin(score) if np.isfinite(score).any() else 0.0, score)
    return pd.Series(filled).rank(pct=True).to_numpy()
