"""Metrics for the churn and CLV models, computed the same way for models and baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width probability bins, weighted by
    the share of rows in each bin."""
    y_true, prob = np.asarray(y_true, float), np.asarray(prob, float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(y_true[in_bin].mean() - prob[in_bin].mean())
    return float(error)


def top_share_capture(y_true: np.ndarray, score: np.ndarray, share: float) -> float:
    """Share of all positives (churners, or revenue) found in the top `share` by score."""
    y_true, score = np.asarray(y_true, float), np.asarray(score, float)
    top = np.argsort(-score, kind="stable")[: max(1, int(round(share * len(score))))]
    total = y_true.sum()
    return float(y_true[top].sum() / total) if total else float("nan")


def churn_metrics(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    y_true, prob = np.asarray(y_true, int), np.asarray(prob, float)
    capture_10 = top_share_capture(y_true, prob, 0.10)
    return {
        "roc_auc": float(roc_auc_score(y_true, prob)),
        "pr_auc": float(average_precision_score(y_true, prob)),
        "brier": float(brier_score_loss(y_true, prob)),
        "log_loss": float(log_loss(y_true, np.clip(prob, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "ece": expected_calibration_error(y_true, prob),
        "top_decile_lift": capture_10 / 0.10,
        "capture_top_10pct": capture_10,
        "capture_top_20pct": top_share_capture(y_true, prob, 0.20),
        "churn_rate": float(y_true.mean()),
    }


def auc_gain_interval(y_true: np.ndarray, model: np.ndarray, baseline: np.ndarray, seed: int,
                      resamples: int = 200, level: float = 0.95) -> tuple[float, float]:
    """Paired bootstrap interval of ROC AUC(model) - ROC AUC(baseline) on the same customers:
    is the model really ahead, or is the gap within the noise of this validation set?"""
    y_true, model, baseline = np.asarray(y_true), np.asarray(model, dtype=float), np.asarray(baseline, dtype=float)
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        if y_true[rows].min() == y_true[rows].max():
            continue  # a resample with one class has no AUC
        gains.append(roc_auc_score(y_true[rows], model[rows]) - roc_auc_score(y_true[rows], baseline[rows]))
    if not gains:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(gains, [tail, 100 - tail])
    return float(low), float(high)


def spearman_gain_interval(y_true: np.ndarray, model: np.ndarray, baseline: np.ndarray, seed: int,
                           resamples: int = 200, level: float = 0.95) -> tuple[float, float]:
    """Paired bootstrap interval of Spearman(model) - Spearman(baseline) on the same customers,
    the CLV counterpart of `auc_gain_interval`."""
    y_true, model, baseline = (np.asarray(a, dtype=float) for a in (y_true, model, baseline))
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        gain = spearmanr(y_true[rows], model[rows]).statistic - spearmanr(y_true[rows], baseline[rows]).statistic
        if np.isfinite(gain):  # a resample with constant values has no rank correlation
            gains.append(gain)
    if not gains:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(gains, [tail, 100 - tail])
    return float(low), float(high)


def normalized_gini(y_true: np.ndarray, pred: np.ndarray) -> float:
    """Gini of the prediction's ordering divided by the Gini of the perfect ordering."""

    def gini(actual: np.ndarray, order_by: np.ndarray) -> float:
        ranked = actual[np.argsort(-order_by, kind="stable")]
        cumulative = np.cumsum(ranked) / ranked.sum()
        return float(cumulative.sum() / len(actual) - (len(actual) + 1) / (2 * len(actual)))

    y_true, pred = np.asarray(y_true, float), np.asarray(pred, float)
    if y_true.sum() == 0:
        return float("nan")
    return gini(y_true, pred) / gini(y_true, y_true)


def clv_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    y_true, pred = np.asarray(y_true, float), np.asarray(pred, float)
    actual_total = y_true.sum()
    return {
        "mae": float(np.mean(np.abs(y_true - pred))),
        "rmse": float(np.sqrt(np.mean((y_true - pred) ** 2))),
        "spearman": float(spearmanr(y_true, pred).statistic),
        "normalized_gini": normalized_gini(y_true, pred),
        "capture_top_10pct": top_share_capture(np.clip(y_true, 0, None), pred, 0.10),
        "aggregate_error_pct": float(100 * (pred.sum() - actual_total) / actual_total)
        if actual_total else float("nan"),
    }


def decile_table(y_true: np.ndarray, pred: np.ndarray) -> pd.DataFrame:
    """Mean predicted vs mean actual per decile of the prediction (1 = highest)."""
    frame = pd.DataFrame({"predicted": pred, "actual": y_true})
    frame["decile"] = 10 - pd.qcut(frame["predicted"].rank(method="first"), 10, labels=False)
    return frame.groupby("decile")[["predicted", "actual"]].mean().reset_index()
