"""Pictures of model quality, logged as MLflow artifacts: what a data scientist would
rather look at than read. Figures are built without pyplot (no global state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve, roc_curve


def _figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def roc_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = _figure()
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (churners found)", title="ROC curve")
    ax.legend(loc="lower right")
    return fig


def precision_recall_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    fig, ax = _figure()
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y_true, score)
        ax.plot(recall, precision, label=name)
    ax.axhline(np.mean(y_true), color="grey", linestyle=":", label="churn rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve")
    ax.legend(loc="upper right")
    return fig


def calibration_figure(y_true: np.ndarray, probability: np.ndarray) -> Figure:
    fig, ax = _figure()
    observed, predicted = calibration_curve(y_true, probability, n_bins=10, strategy="quantile")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    ax.plot(predicted, observed, marker="o", label="churn model")
    ax.set(xlabel="predicted churn probability", ylabel="observed churn rate", title="Calibration (deciles)")
    ax.legend(loc="upper left")
    return fig


def gains_figure(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Cumulative gains: the share of churners reached by contacting the top x% by score."""
    fig, ax = _figure()
    share = np.arange(1, len(y_true) + 1) / len(y_true)
    for name, score in scores.items():
        ranked = np.asarray(y_true)[np.argsort(-np.asarray(score), kind="stable")]
        ax.plot(share, np.cumsum(ranked) / ranked.sum(), label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax.axvline(0.1, color="lightgrey", linewidth=0.8)
    ax.set(xlabel="share of customers contacted (highest risk first)", ylabel="share of churners reached",
           title="Cumulative gains (lift = gain / share)")
    ax.legend(loc="lower right")
    return fig


def importance_figure(names: list[str], importance: np.ndarray, title: str, top: int = 20) -> Figure:
    order = np.argsort(importance)[-top:]
    fig, ax = _figure(7, 0.3 * len(order) + 1.2)
    ax.barh(np.array(names)[order], np.asarray(importance)[order], color="#4c72b0")
    ax.set(title=title)
    return fig


def shap_summary_figure(contributions: pd.DataFrame, features: pd.DataFrame, top: int = 15) -> Figure:
    """One row per feature (largest mean |SHAP| on top); each dot a customer, placed by its
    contribution to churn log-odds and coloured by the feature's value (rank within column)."""
    strongest = contributions.abs().mean().sort_values().index[-top:]
    fig, ax = _figure(8, 0.35 * len(strongest) + 1.5)
    rng = np.random.default_rng(0)
    for row, name in enumerate(strongest):
        values = pd.to_numeric(features[name], errors="coerce") if name in features else None
        # categorical or absent values are drawn in the neutral middle colour
        colour = np.full(len(contributions), 0.5) if values is None else values.rank(pct=True).fillna(0.5).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(contributions))
        points = ax.scatter(contributions[name], row + jitter, c=colour, cmap="coolwarm", s=4, vmin=0, vmax=1)
    ax.set_yticks(range(len(strongest)), strongest)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="contribution to churn log-odds (SHAP)", title="What drives churn risk")
    fig.colorbar(points, ax=ax, label="feature value (low to high)")
    return fig


def decile_figure(table: pd.DataFrame) -> Figure:
    fig, ax = _figure()
    x = table["decile"].to_numpy()
    ax.bar(x - 0.2, table["predicted"], width=0.4, label="predicted")
    ax.bar(x + 0.2, table["actual"], width=0.4, label="actual")
    ax.set(xlabel="decile of predicted CLV (1 = highest)", ylabel="mean revenue over the horizon",
           title="CLV by predicted decile", xticks=x)
    ax.legend()
    return fig


def backtest_figure(table: pd.DataFrame, metric: str, title: str) -> Figure:
    """Each candidate's metric at every backtest origin (the chosen one drawn bold)."""
    fig, ax = _figure()
    per_origin = table[table["origin"] != "mean"]
    for name, rows in per_origin.groupby("candidate", sort=False):
        chosen = bool(rows["chosen"].iloc[0])
        ax.plot(rows["origin"], rows[metric], marker="o", linewidth=2.5 if chosen else 1.0,
                label=f"{name} ({rows['setting'].iloc[0]})" + (": ships" if chosen else ""))
    ax.set_xlabel("backtest origin (trained only on labels that ended by it)")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
