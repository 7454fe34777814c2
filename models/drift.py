"""Input drift: the distribution of a score or feature at training time, stored in the model,
and the population stability index of tonight's values against it."""

from __future__ import annotations

import numpy as np


def distribution_reference(values: np.ndarray, bins: int = 10) -> dict[str, list[float]]:
    """Decile edges of a training distribution and the share of rows in each bin (missing
    values get a bin of their own): what the population stability index compares against."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) else np.array([])
    return {"edges": edges.tolist(), "shares": _bin_shares(values, edges).tolist()}


def population_stability_index(reference: dict[str, list[float]], values: np.ndarray) -> float:
    """PSI = sum over bins of (now - then) * ln(now / then); < 0.1 stable, > 0.25 shifted."""
    then = np.asarray(reference["shares"])
    now = _bin_shares(np.asarray(values, dtype=float), np.asarray(reference["edges"]))
    then, now = np.clip(then, 1e-4, None), np.clip(now, 1e-4, None)
    return float(np.sum((now - then) * np.log(now / then)))


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    missing = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)
