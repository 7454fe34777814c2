"""The walk-forward backtest that judges every candidate, and the choice it makes.

At each origin, a candidate learns only from the fold's training cutoffs (labels that ended
by the origin), scores the origin's customers and is compared with what they then did.
Settings (LightGBM's complexity and rounds, the logistic regression's strength) are chosen
on the mean over origins; a candidate's per-origin figures use a calibration fitted on the
other origins only (cross-fitted by origin), so no figure has seen its own answers. The
simplest candidate within the backtest's noise of the best one ships.

LightGBM's fits are most of a training run's time; the backtest reports them through the
`progress` it is given (pipeline/logs.progress in a training run; models/ log nothing of
their own)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from models.errors import ModelDataError
from models.forward import candidates as cands
from models.forward.calibration import CALIBRATORS, IDENTITY, RevenueScale
from models.forward.scorers import BlendScorer
from models.metrics import churn_metrics, clv_metrics

PRIMARY = {cands.CHURN: "roc_auc", cands.CLV: "spearman"}
METRICS = {cands.CHURN: churn_metrics, cands.CLV: clv_metrics}
LABEL = {cands.CHURN: "is_churned", cands.CLV: "future_revenue"}
# progress(items, total, label, unit, rows=...): yields the items, saying how far a loop got
Progress = Callable[..., Iterator]


def quietly(items: Iterable, total: int, label: str, unit: str = "items", rows=None) -> Iterator:
    """A `Progress` that says nothing."""
    return iter(items)


@dataclass
class Fold:
    """A fold's rows, enriched with the lifetime model fitted on its own training rows."""

    origin_date: dt.date
    training: pd.DataFrame
    origin: pd.DataFrame


@dataclass
class CandidateResult:
    name: str
    complexity: int
    setting: str
    params: dict
    predictions: list[np.ndarray]  # out-of-time link (churn) or value (CLV), one array per fold
    calibrated: list[np.ndarray]  # the same, calibrated on the other origins: probability or revenue
    fold_metrics: list[dict[str, float]]
    settings_tried: dict[str, float] = field(default_factory=dict)  # setting -> mean primary metric


@dataclass
class Backtest:
    kind: str
    origins: list[dt.date]
    results: dict[str, CandidateResult]
    chosen: str
    why: str
    targets: list[np.ndarray]  # what each origin's customers then did

    def table(self) -> pd.DataFrame:
        """One row per candidate and origin, plus its mean: what the run's table shows."""
        rows = []
        for result in self.results.values():
            for origin, metrics in zip(self.origins, result.fold_metrics, strict=True):
                rows.append({"candidate": result.name, "origin": origin.isoformat(), **metrics})
            mean = pd.DataFrame(result.fold_metrics).mean().to_dict()
            rows.append({"candidate": result.name, "origin": "mean", **mean})
        table = pd.DataFrame(rows)
        info = pd.DataFrame([{"candidate": r.name, "complexity": r.complexity, "setting": r.setting,
                              "chosen": r.name == self.chosen,
                              "settings_tried": ", ".join(f"{k}: {v:.4f}" for k, v in r.settings_tried.items())}
                             for r in self.results.values()])
        return info.merge(table, on="candidate")


def backtest(kind: str, folds: list[Fold], features: list[str], seed: int, tolerance: float,
             tuned: dict | None = None, explicit: dict | None = None, progress: Progress = quietly) -> Backtest:
    """Every candidate of `kind` on every fold, and the one that ships (LightGBM's fits
    reported through `progress`)."""
    if len(folds) < 2:
        raise ModelDataError(f"The {kind} backtest needs at least two origins with active customers before and at "
                             f"them; the data allows {len(folds)}. Use a longer history, or fewer or closer "
                             "cutoffs (training.cutoffs, training.spacing_days).")
    targets = [f.origin[LABEL[kind]].to_numpy(dtype=float) for f in folds]
    for fold, target in zip(folds, targets, strict=True):
        check_origin(kind, fold.origin_date, target)
    context = _Context(kind, folds, tolerance, targets, progress)
    results = {}
    for candidate in (cands.CHURN_CANDIDATES if kind == cands.CHURN else cands.CLV_CANDIDATES):
        if candidate.name == "blend":
            results["blend"] = _blend(kind, candidate, results, targets)
        elif candidate.name == "lightgbm":
            results["lightgbm"] = _lightgbm(context, candidate, features, seed, tuned, explicit)
        elif candidate.name == "logistic":
            paths = [cands.fit_logistic_path(f.training, f.training[LABEL[kind]], features, seed,
                                             cands.LOGISTIC_STRENGTHS) for f in folds]
            results["logistic"] = _best_setting(context, candidate, {
                f"C={c:g}": ({"strength": c}, [path[c] for path in paths]) for c in cands.LOGISTIC_STRENGTHS})
        else:
            results[candidate.name] = _best_setting(context, candidate, {
                "fitted": ({}, [cands.fit_lifetime(kind, f.training) for f in folds])})
    order = sorted(results, key=lambda n: results[n].complexity)
    chosen, why = simplest_adequate(order, {n: [m[PRIMARY[kind]] for m in results[n].fold_metrics] for n in order},
                                    tolerance)
    return Backtest(kind, [f.origin_date for f in folds], results, chosen, why, targets)


def check_origin(kind: str, origin: dt.date, target: np.ndarray) -> None:
    """An origin where nothing varies cannot judge a ranking: say so instead of comparing NaNs."""
    if kind == cands.CHURN and len(np.unique(target)) < 2:
        raise ModelDataError(f"Backtest origin {origin}: all {len(target):,} active customers have the same churn "
                             f"label ({'churned' if target.size and target[0] else 'retained'}), so no churn ranking "
                             "can be judged there. Check the churn definition and horizon, or use more history.")
    if kind == cands.CLV and not (np.clip(target, 0, None) > 0).any():
        raise ModelDataError(f"Backtest origin {origin}: none of its {len(target):,} active customers spent anything "
                             "in the CLV horizon after it, so no CLV ranking can be judged there. Check the "
                             "transactions' amounts and the CLV horizon.")


def simplest_adequate(order: list[str], scores: dict[str, list[float]], tolerance: float) -> tuple[str, str]:
    """The simplest of `order` whose per-origin scores trail the best mean by no more than
    the noise: the standard error of the paired per-origin differences, or `tolerance`."""
    best = max(order, key=lambda n: (np.mean(scores[n]), -order.index(n)))
    for name in order:
        gaps = np.asarray(scores[best]) - np.asarray(scores[name])
        noise = max(tolerance, float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else tolerance)
        if gaps.mean() <= noise:
            if name == best:
                return name, f"{name} has the best mean ({np.mean(scores[name]):.4f}) and no simpler candidate is " \
                             f"within the noise of it"
            return name, (f"{name} ({np.mean(scores[name]):.4f}) is within the backtest's noise ({noise:.4f}) of the "
                          f"best, {best} ({np.mean(scores[best]):.4f}), and simpler")
    raise AssertionError("the best candidate is always within its own noise")


@dataclass(frozen=True)
class _Context:
    kind: str
    folds: list[Fold]
    tolerance: float
    targets: list[np.ndarray]
    progress: Progress = quietly

    def predict(self, scorer, rows: pd.DataFrame) -> np.ndarray:
        inputs = scorer.prepare(rows)
        return scorer.link(inputs) if self.kind == cands.CHURN else scorer.value(inputs)


def cross_fitted(kind: str, predictions: list[np.ndarray], targets: list[np.ndarray]) -> list[np.ndarray]:
    """Per origin: the predictions after a calibration fitted on the other origins."""
    out = []
    for k in range(len(predictions)):
        others = [j for j in range(len(predictions)) if j != k]
        calibrator = CALIBRATORS[kind].fit(np.concatenate([predictions[j] for j in others]),
                                           np.concatenate([targets[j] for j in others]), strict=False)
        out.append(calibrator.predict(predictions[k]))
    return out


def _best_setting(context: _Context, candidate: cands.Candidate, tried: dict[str, tuple[dict, list]]
                  ) -> CandidateResult:
    """The setting of one candidate that the backtest prefers (simplest first in `tried`)."""
    kind, targets = context.kind, context.targets
    origin = {name: [context.predict(s, f.origin) for s, f in zip(scorers, context.folds, strict=True)]
              for name, (_, scorers) in tried.items()}
    calibrated = {name: cross_fitted(kind, predictions, targets) for name, predictions in origin.items()}
    metrics = {name: [METRICS[kind](y, p) for y, p in zip(targets, c, strict=True)] for name, c in calibrated.items()}
    scores = {name: [m[PRIMARY[kind]] for m in fold] for name, fold in metrics.items()}
    setting, _ = simplest_adequate(list(tried), scores, context.tolerance)
    tried_means = {name: float(np.mean(s)) for name, s in scores.items()}
    return CandidateResult(candidate.name, candidate.complexity, setting, tried[setting][0], origin[setting],
                           calibrated[setting], metrics[setting], tried_means)


def _lightgbm(context: _Context, candidate: cands.Candidate, features: list[str], seed: int, tuned: dict | None,
              explicit: dict | None) -> CandidateResult:
    """Each point of the complexity grid on every fold; its rounds are the best on average."""
    kind, folds = context.kind, context.folds
    label, (_, higher) = LABEL[kind], cands.EVAL_METRIC[kind]
    grid = cands.lightgbm_grid(int(np.mean([len(f.training) for f in folds])), tuned, explicit)
    fits = [(setting, fold) for setting in grid for fold in folds]
    fitted: dict[str, list] = {setting: [] for setting in grid}
    for setting, fold in context.progress(fits, len(fits), f"{kind} backtest, LightGBM", "fits",
                                          rows=lambda fit: len(fit[1].training)):
        fitted[setting].append(cands.fit_booster(kind, grid[setting], seed, fold.training, fold.training[label],
                                                 features, eval_frame=fold.origin, eval_target=fold.origin[label]))
    tried = {}
    for setting, params in grid.items():
        rounds = cands.best_rounds([curve for _, curve in fitted[setting]], higher)
        tried[setting] = (params | {"n_estimators": rounds},
                          at_common_rounds(kind, params, seed, folds, fitted[setting], rounds, features))
    return _best_setting(context, candidate, tried)


def at_common_rounds(kind: str, params: dict, seed: int, folds: list[Fold], fitted: list, rounds: int,
                     features: list[str]) -> list:
    """Every fold's booster at the common number of rounds, as the refit that ships will be.
    A fold that stopped early on its own origin keeps only the trees up to its own best round;
    it is grown anew to the common length: scoring it at its own best would use its answers."""
    scorers = []
    for (scorer, _), fold in zip(fitted, folds, strict=True):
        if scorer.booster.booster_.current_iteration() < rounds:
            scorer, _ = cands.fit_booster(kind, params, seed, fold.training, fold.training[LABEL[kind]], features,
                                          rounds=rounds)
        scorer.rounds = rounds
        scorers.append(scorer)
    return scorers


def blend_weights(kind: str, parts: list[np.ndarray], target: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights (and an intercept for churn) of the parts' out-of-time
    predictions. Churn: a logistic stack of the log-odds. Revenue: each part's scale to the
    realised total, for `log_blend` (fitted weights would follow a few big spenders, and
    their ranking with them)."""
    matrix = np.column_stack(parts)
    if kind == cands.CLV:
        return np.asarray([RevenueScale.fit(matrix[:, j], target).factor for j in range(matrix.shape[1])]), 0.0
    keep = np.ones(matrix.shape[1], dtype=bool)
    while keep.any():  # drop a part the stack would weigh negatively, and refit
        stack = LogisticRegression(C=1e6).fit(matrix[:, keep], target)
        if (stack.coef_[0] >= 0).all():
            weights = np.zeros(matrix.shape[1])
            weights[keep] = stack.coef_[0]
            return weights, float(stack.intercept_[0])
        keep[np.flatnonzero(keep)[np.argmin(stack.coef_[0])]] = False
    return np.zeros(matrix.shape[1]), float(np.log(target.mean() / (1 - target.mean())))


def log_blend(parts: list[np.ndarray], scales: np.ndarray) -> np.ndarray:
    """Revenue blend: the geometric mean of the parts (each scaled to the realised total)
    plus one, minus one. Revenue is long-tailed: an arithmetic mean follows whichever part
    is most extreme for a customer, a geometric one what the parts agree on."""
    logs = np.column_stack([np.log1p(np.clip(p * s, 0, None)) for p, s in zip(parts, scales, strict=True)])
    return np.expm1(logs.mean(axis=1))


def _blend(kind: str, candidate: cands.Candidate, results: dict[str, CandidateResult],
           targets: list[np.ndarray]) -> CandidateResult:
    """The stack of the other candidates, its weights fitted on the other origins."""
    names = list(results)
    if kind == cands.CLV:
        predictions = []
        for k in range(len(targets)):
            others = [j for j in range(len(targets)) if j != k]
            scales, _ = blend_weights(kind, [np.concatenate([results[n].predictions[j] for j in others])
                                             for n in names], np.concatenate([targets[j] for j in others]))
            predictions.append(log_blend([results[n].predictions[k] for n in names], scales))
        calibrated = cross_fitted(kind, predictions, targets)
        metrics = [METRICS[kind](y, p) for y, p in zip(targets, calibrated, strict=True)]
        return CandidateResult(candidate.name, candidate.complexity, "+".join(names), {"parts": names}, predictions,
                               calibrated, metrics)
    predictions, calibrated = [], []
    for k in range(len(targets)):
        others = [j for j in range(len(targets)) if j != k]
        weights, intercept = blend_weights(kind, [np.concatenate([results[n].predictions[j] for j in others])
                                                  for n in names], np.concatenate([targets[j] for j in others]))
        link = intercept + np.column_stack([results[n].predictions[k] for n in names]) @ weights
        predictions.append(link)
        calibrated.append(expit(link))
    metrics = [METRICS[kind](y, p) for y, p in zip(targets, calibrated, strict=True)]
    return CandidateResult(candidate.name, candidate.complexity, "+".join(names), {"parts": names}, predictions,
                           calibrated, metrics)


def refit(kind: str, result: Backtest, rows: pd.DataFrame, features: list[str], seed: int):
    """The chosen candidate fitted on the production rows with the settings the backtest
    chose, and its calibration fitted on its out-of-time predictions."""
    chosen = result.results[result.chosen]
    targets = result.targets
    if chosen.name == "blend":
        parts = chosen.params["parts"]
        weights, intercept = blend_weights(kind, [np.concatenate(result.results[n].predictions) for n in parts],
                                           np.concatenate(targets))
        scorers = {n: _refit_one(kind, result.results[n], rows, features, seed) for n, w in zip(parts, weights,
                                                                                                  strict=True) if w > 0}
        if kind == cands.CLV:  # the geometric blend, scaled on its out-of-time predictions
            blend = BlendScorer(scorers, {n: float(w) for n, w in zip(parts, weights, strict=True)}, space="log")
            return blend, CALIBRATORS[kind].fit(np.concatenate(chosen.predictions), np.concatenate(targets))
        if not scorers:
            raise ModelDataError("The blend of the churn candidates gives every part a weight of zero on the "
                                 "backtest: none of them ranks churn there. Check the labels and the history.")
        blend = BlendScorer(scorers, {n: float(w) for n, w in zip(parts, weights, strict=True) if w > 0}, intercept)
        return blend, IDENTITY[kind]
    calibrator = CALIBRATORS[kind].fit(np.concatenate(chosen.predictions), np.concatenate(targets))
    return _refit_one(kind, chosen, rows, features, seed), calibrator


def _refit_one(kind: str, result: CandidateResult, rows: pd.DataFrame, features: list[str], seed: int):
    label = LABEL[kind]
    if result.name == "lightgbm":
        scorer, _ = cands.fit_booster(kind, result.params, seed, rows, rows[label], features,
                                      rounds=int(result.params["n_estimators"]))
        return scorer
    if result.name == "logistic":
        return cands.fit_logistic(rows, rows[label], features, seed, result.params["strength"])
    return cands.fit_lifetime(kind, rows)
