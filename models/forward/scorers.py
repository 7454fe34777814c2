"""What each candidate model computes, before calibration: a churn score on the log-odds
scale (`link`) with per-feature contributions to it, or a CLV value.

Every scorer reads a frame already enriched with the lifetime model's outputs, so that one
calibrator (models/churn.py, models/clv.py) and one reason writer (models/reasons.py) work
for whichever candidate ships. A scorer's `prepare` turns such a frame into the scorer's own
input (its columns, in its order and types); `link`, `value` and the contributions read that
input, so that rows scored and explained are prepared once. Contributions add up, per row,
to the link minus a constant: exact for the linear and lifetime scorers, path attributions
for the booster."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import logit

from models.attribution import PathAttribution
from models.baselines import plain_frame
from models.schema import FeatureSchema

# Prediction, unlike training, has no step where threads wait for each other (rows are
# independent), so it uses every core; the result is the same on any number of threads.
PREDICT_THREADS = os.cpu_count() or 1


def clipped_logit(probability) -> np.ndarray:
    # a probability can round to exactly 0 or 1, whose log-odds are infinite
    return logit(np.clip(np.asarray(probability, dtype=float), 1e-12, 1 - 1e-12))


@dataclass
class BoosterScorer:
    """A LightGBM model: the raw score (log-odds for churn, log of the mean for Tweedie CLV)
    after `rounds` boosting rounds."""

    schema: FeatureSchema
    booster: lgb.LGBMModel
    rounds: int

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The booster's columns, in its order and types (models/schema.py)."""
        return self.schema.prepare(frame)

    def link(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self._checked(inputs), raw_score=True, num_iteration=self.rounds,
                                    num_threads=PREDICT_THREADS)

    def value(self, inputs: pd.DataFrame) -> np.ndarray:
        """The prediction on the target's scale (CLV: revenue)."""
        return self.booster.predict(self._checked(inputs), num_iteration=self.rounds, num_threads=PREDICT_THREADS)

    def contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        if getattr(self, "_paths", None) is None:  # the leaf credits depend only on the trees: built once
            self._paths = PathAttribution(self.booster.booster_, self.schema.names, self.rounds)
        return self._paths.explain(self.booster.booster_, self._checked(inputs), threads=PREDICT_THREADS)

    def exact_contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        """Exact SHAP values (about 1 ms a row): for samples and for checking `contributions`."""
        values = self.booster.booster_.predict(self._checked(inputs), pred_contrib=True, num_iteration=self.rounds,
                                               num_threads=PREDICT_THREADS)
        return pd.DataFrame(values[:, :-1], columns=self.schema.names, index=inputs.index)

    def _checked(self, inputs: pd.DataFrame) -> pd.DataFrame:
        # LightGBM reads columns by position: a frame that is not `prepare`'s would be misread
        if list(inputs.columns) != self.schema.names:
            raise ValueError("A booster reads the frame its `prepare` made: its feature columns in its order.")
        return inputs

    def importance(self) -> pd.Series:
        return pd.Series(self.booster.booster_.feature_importance("gain", iteration=self.rounds),
                         index=self.schema.names)


@dataclass
class LinearScorer:
    """A fitted scikit-learn pipeline (models/baselines.py) whose last step is linear: the
    link is its decision function, and a feature's contribution is its coefficients times
    how far the row's transformed value lies from the training mean (exact SHAP for a
    linear model)."""

    pipeline: object
    schema: FeatureSchema
    columns_of: dict[str, list[int]] = field(default_factory=dict)  # feature -> columns after transformation
    training_mean: np.ndarray | None = None

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The pipeline's columns as it reads them (models/baselines.plain_frame)."""
        return plain_frame(frame, self.schema)

    def _transformed(self, inputs: pd.DataFrame) -> np.ndarray:
        matrix = self.pipeline[:-1].transform(inputs)
        return matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)

    def link(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.pipeline[-1].decision_function(self._transformed(inputs))

    def value(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.pipeline[-1].predict(self._transformed(inputs))

    def contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        coef = np.ravel(self.pipeline[-1].coef_)
        parts = (self._transformed(inputs) - self.training_mean) * coef
        return pd.DataFrame({name: parts[:, cols].sum(axis=1) for name, cols in self.columns_of.items()},
                            index=inputs.index)

    exact_contributions = contributions

    def importance(self) -> pd.Series:
        coef = np.abs(np.ravel(self.pipeline[-1].coef_))
        return pd.Series({name: float(coef[cols].sum()) for name, cols in self.columns_of.items()})

    @classmethod
    def fitted(cls, pipeline, schema: FeatureSchema, frame: pd.DataFrame) -> LinearScorer:
        """Wrap a pipeline fitted on `frame`: map its output columns back to the features."""
        scorer = cls(pipeline, schema)
        names = pipeline[:-1].get_feature_names_out()
        owners = [_owner(str(n), schema) for n in names]
        scorer.columns_of = {f: [i for i, o in enumerate(owners) if o == f] for f in schema.names if f in owners}
        known = getattr(pipeline, "training_mean", None)  # worked out while fitting, when it was
        scorer.training_mean = known if known is not None else scorer._transformed(scorer.prepare(frame)).mean(axis=0)
        return scorer


def _owner(column: str, schema: FeatureSchema) -> str:
    """The feature a transformed column comes from: 'numeric__x' and
    'numeric__missingindicator_x' are numeric x; 'categorical__x_level' is the categorical x
    whose name, followed by one of its levels, spells the column."""
    group, _, bare = column.partition("__")
    if group == "numeric":
        return bare.removeprefix("missingindicator_")
    return next((f for f, levels in schema.categories.items()
                 if any(bare == f"{f}_{level}" for level in (*levels, "missing", "infrequent_sklearn"))),
                max((f for f in schema.categories if bare.startswith(f + "_")), key=len, default=bare))


@dataclass
class LifetimeScorer:
    """The BG/NBD model alone: churn log-odds = logit P(no purchase within the horizon), or
    CLV = BG/NBD x Gamma-Gamma expected revenue. One input, so one contribution."""

    column: str
    fill: float = 0.0  # customers the lifetime model cannot describe get the training mean

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[[self.column]]

    def link(self, inputs: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num(clipped_logit(inputs[self.column].to_numpy(dtype=float)), nan=self.fill)

    def value(self, inputs: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num(inputs[self.column].to_numpy(dtype=float), nan=0.0)

    def contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({self.column: self.link(inputs) - self.fill}, index=inputs.index)

    exact_contributions = contributions

    def importance(self) -> pd.Series:
        return pd.Series({self.column: 1.0})


@dataclass
class BlendScorer:
    """A weighted sum of other scorers' links (churn), weights never negative, so that each
    part's contributions keep their direction in the blend; or (CLV) the geometric mean of
    the parts' values, each scaled by its weight."""

    parts: dict[str, object]
    weights: dict[str, float]
    intercept: float = 0.0
    space: str = "linear"  # "log": revenue parts scaled by their weights, then their geometric mean (CLV)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each part's input, under the part's name (the columns' first level)."""
        return pd.concat({name: part.prepare(frame) for name, part in self.parts.items()}, axis=1)

    def link(self, inputs: pd.DataFrame) -> np.ndarray:
        return self.intercept + sum(w * self.parts[n].link(inputs[n]) for n, w in self.weights.items())

    def value(self, inputs: pd.DataFrame) -> np.ndarray:
        if self.space == "log":
            logs = [np.log1p(np.clip(w * self.parts[n].value(inputs[n]), 0, None)) for n, w in self.weights.items()]
            return np.expm1(np.mean(logs, axis=0))
        return self.intercept + sum(w * self.parts[n].value(inputs[n]) for n, w in self.weights.items())

    def _weighted(self, method: str, inputs: pd.DataFrame) -> pd.DataFrame:
        frames = [getattr(self.parts[n], method)(inputs[n]) * w for n, w in self.weights.items() if w > 0]
        return pd.concat(frames, axis=1).T.groupby(level=0).sum().T.reindex(index=inputs.index)

    def contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        return self._weighted("contributions", inputs)

    def exact_contributions(self, inputs: pd.DataFrame) -> pd.DataFrame:
        return self._weighted("exact_contributions", inputs)

    def importance(self) -> pd.Series:
        series = [self.parts[n].importance() / max(self.parts[n].importance().sum(), 1e-12) * w
                  for n, w in self.weights.items()]
        return pd.concat(series, axis=1).fillna(0).sum(axis=1)
