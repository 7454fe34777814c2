"""The churn model: a LightGBM classifier whose probabilities are calibrated.

The booster learns from the earlier training cutoffs; a Platt calibrator is fitted on the
latest training cutoff, which the booster never saw, so that a predicted 0.3 means about
30% of such customers churn."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from models.attribution import PathAttribution
from models.drift import distribution_reference
from models.errors import ModelDataError
from models.lifetime import LIFETIME_FEATURES, LifetimeModel
from models.schema import FeatureSchema

DEFAULT_PARAMS: dict = {
    # One thread: LightGBM's OpenMP threads wait for each other at every step, and on a shared
    # or busy 2-core machine (a parallel test run, a neighbour's job) two threads were seen
    # running 100x slower. Set n_jobs in model.churn_params on a dedicated machine.
    "n_jobs": 1,
    "n_estimators": 600,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}
EARLY_STOPPING_ROUNDS = 50
# Prediction, unlike training, has no step where threads wait for each other (rows are
# independent), so it uses every core; the result is the same on any number of threads.
PREDICT_THREADS = os.cpu_count() or 1


def lightgbm_settings(seed: int) -> dict:
    """Settings that make a fit reproducible on any machine with the locked versions."""
    return {"random_state": seed, "deterministic": True, "force_row_wise": True, "verbose": -1}


@dataclass(frozen=True)
class PlattCalibrator:
    """Calibrated probability = sigmoid(slope x booster log-odds + intercept).

    Two numbers, because the calibration cutoff holds only a few thousand customers: there
    isotonic regression's step function fits their noise. On the demo world, over four
    seeds, isotonic gave a validation ECE of 0.019-0.029 and this 0.008-0.015 (0.021-0.026
    against 0.016-0.020 one cutoff earlier), with the same ranking (it is monotone)."""

    slope: float
    intercept: float

    @classmethod
    def fit(cls, raw_probability: np.ndarray, labels: pd.Series) -> PlattCalibrator:
        labels = np.asarray(labels)
        if len(np.unique(labels)) < 2:
            raise ModelDataError(f"The calibration cutoff's {len(labels):,} customers all have the same churn label "
                            f"({labels[0] if len(labels) else 'none'}): there is nothing to calibrate on. "
                            "Use more data or an earlier validation cutoff (training.validation_cutoff).")
        fitted = LogisticRegression(C=1e6).fit(_log_odds(raw_probability)[:, None], labels)
        slope, intercept = float(fitted.coef_[0, 0]), float(fitted.intercept_[0])
        if slope <= 0:  # a calibration must not turn the ranking upside down
            raise ModelDataError(f"On the calibration cutoff, churn does not rise with the model's score (Platt slope "
                            f"{slope:.3f}): the model learned nothing that holds a cutoff later. Check the labels "
                            "and the data's history, or use more training cutoffs.")
        return cls(slope, intercept)

    def predict(self, raw_probability: np.ndarray) -> np.ndarray:
        return expit(self.slope * _log_odds(raw_probability) + self.intercept)


def _log_odds(probability: np.ndarray) -> np.ndarray:
    # a booster's probability can round to exactly 0 or 1, whose log-odds are infinite
    return logit(np.clip(np.asarray(probability, dtype=float), 1e-12, 1 - 1e-12))


@dataclass
class ChurnModel:
    schema: FeatureSchema
    booster: lgb.LGBMClassifier
    calibrator: PlattCalibrator
    lifetime: LifetimeModel
    # Training-time distributions of the score and the strongest features (drift guard).
    reference: dict[str, dict] = field(default_factory=dict)

    def inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The booster's input: the features plus the lifetime model's outputs."""
        return self.schema.prepare(self.lifetime.enrich(frame))

    def example_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A few rows of what a caller sends: the features, without the derived lifetime ones."""
        return self.schema.example_input(frame, derived=tuple(LIFETIME_FEATURES))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of churning within the horizon, one per row."""
        raw = self.booster.predict_proba(self.inputs(frame), num_threads=PREDICT_THREADS)[:, 1]
        return self.calibrator.predict(raw)

    def drift_inputs(self, frame: pd.DataFrame, probability: np.ndarray) -> dict[str, np.ndarray]:
        """The values whose distribution is compared with `reference`."""
        inputs = self.inputs(frame)
        return {name: probability if name == "churn_probability" else inputs[name].to_numpy(dtype=float)
                for name in getattr(self, "reference", {})}

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-row, per-feature contributions to the churn log-odds: path attributions, fast
        enough for every customer (models/attribution.py)."""
        return self._paths().explain(self.booster.booster_, self.inputs(frame), threads=PREDICT_THREADS)

    def shap_values(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Exact SHAP values (about 1 ms a row): for samples, plots and checking `contributions`."""
        values = self.booster.booster_.predict(self.inputs(frame), pred_contrib=True,
                                               num_iteration=self._iterations(), num_threads=PREDICT_THREADS)
        return pd.DataFrame(values[:, :-1], columns=self.schema.names, index=frame.index)

    def _iterations(self) -> int | None:
        return getattr(self.booster, "best_iteration_", None) or None

    def _paths(self) -> PathAttribution:
        # Built on first use and kept: the leaf credits depend only on the fitted trees.
        if getattr(self, "_path_attribution", None) is None:
            self._path_attribution = PathAttribution(self.booster.booster_, self.schema.names, self._iterations())
        return self._path_attribution


def train_churn_model(
    fit_frame: pd.DataFrame,
    fit_labels: pd.Series,
    calibration_frame: pd.DataFrame,
    calibration_labels: pd.Series,
    feature_names: list[str],
    params: dict,
    seed: int,
    lifetime: LifetimeModel,
) -> ChurnModel:
    fit_frame, calibration_frame = lifetime.enrich(fit_frame), lifetime.enrich(calibration_frame)
    schema = FeatureSchema.from_frame(fit_frame, [*feature_names, *LIFETIME_FEATURES])
    booster = lgb.LGBMClassifier(**(DEFAULT_PARAMS | params), **lightgbm_settings(seed))
    x_cal = schema.prepare(calibration_frame)
    booster.fit(
        schema.prepare(fit_frame), fit_labels,
        eval_X=x_cal, eval_y=calibration_labels,
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    calibrator = PlattCalibrator.fit(booster.predict_proba(x_cal)[:, 1], calibration_labels)
    model = ChurnModel(schema, booster, calibrator, lifetime)
    model.reference = drift_reference(model, calibration_frame)
    return model


def drift_reference(model: ChurnModel, frame: pd.DataFrame, top_features: int = 5) -> dict[str, dict]:
    """Distributions of the churn probability and of the numeric features with the most
    gain, on rows the booster did not learn from."""
    gain = pd.Series(model.booster.booster_.feature_importance("gain"), index=model.schema.names)
    strongest = [n for n in gain.sort_values(ascending=False).index if n in model.schema.numeric][:top_features]
    inputs = model.schema.prepare(frame)
    reference = {"churn_probability": distribution_reference(model.calibrator.predict(
        model.booster.predict_proba(inputs)[:, 1]))}
    return reference | {name: distribution_reference(inputs[name].to_numpy(dtype=float)) for name in strongest}
