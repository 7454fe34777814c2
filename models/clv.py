"""The CLV model: net revenue a customer will bring over the CLV horizon.

Spend is zero for many customers and long-tailed for the rest, which a Tweedie loss fits
better than squared error."""

from __future__ import annotations

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.churn import EARLY_STOPPING_ROUNDS, PREDICT_THREADS, lightgbm_settings
from models.lifetime import LIFETIME_FEATURES, LifetimeModel
from models.schema import FeatureSchema

DEFAULT_PARAMS: dict = {
    "n_jobs": 1,  # see models/churn.py
    "objective": "tweedie",
    "tweedie_variance_power": 1.3,
    "n_estimators": 600,
    "learning_rate": 0.03,
    "num_leaves": 31,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
}


@dataclass
class ClvModel:
    schema: FeatureSchema
    booster: lgb.LGBMRegressor
    lifetime: LifetimeModel

    def example_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A few rows of what a caller sends: the features, without the derived lifetime ones."""
        return self.schema.example_input(frame, derived=tuple(LIFETIME_FEATURES))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted net revenue over the horizon (never negative), one per row."""
        inputs = self.schema.prepare(self.lifetime.enrich(frame))
        return np.clip(self.booster.predict(inputs, num_threads=PREDICT_THREADS), 0.0, None)


def train_clv_model(
    fit_frame: pd.DataFrame,
    fit_revenue: pd.Series,
    stop_frame: pd.DataFrame,
    stop_revenue: pd.Series,
    feature_names: list[str],
    params: dict,
    seed: int,
    lifetime: LifetimeModel,
) -> ClvModel:
    """Refunds can make a customer's future net revenue negative; the Tweedie loss needs
    non-negative targets, so they count as zero (nothing to win there)."""
    fit_frame, stop_frame = lifetime.enrich(fit_frame), lifetime.enrich(stop_frame)
    schema = FeatureSchema.from_frame(fit_frame, [*feature_names, *LIFETIME_FEATURES])
    booster = lgb.LGBMRegressor(**(DEFAULT_PARAMS | params), **lightgbm_settings(seed))
    booster.fit(
        schema.prepare(fit_frame), fit_revenue.clip(lower=0),
        eval_X=schema.prepare(stop_frame), eval_y=stop_revenue.clip(lower=0),
        callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
    )
    return ClvModel(schema, booster, lifetime)
