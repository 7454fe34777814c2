"""The CLV model that ships: net revenue a customer will bring over the CLV horizon, from
whichever candidate won the backtest (models/forward/), scaled so that its total matched
what out-of-time customers really spent. `predict` reads plain features, or the input
`prepare` made of them (models/prepared.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.forward.calibration import RevenueScale
from models.forward.scorers import BoosterScorer
from models.lifetime import LIFETIME_FEATURES, LifetimeModel
from models.prepared import PreparedInput, prepare_input, prepared
from models.schema import FeatureSchema


@dataclass
class ClvModel:
    schema: FeatureSchema  # the columns a caller sends
    scorer: object  # a scorer of models/forward/scorers.py with `value`
    calibrator: RevenueScale
    lifetime: LifetimeModel
    candidate: str = "lightgbm"

    def __setstate__(self, state: dict) -> None:
        # a champion pickled before candidates competed: a booster, unscaled
        if "booster" in state:
            booster = state.pop("booster")
            state["scorer"] = BoosterScorer(state["schema"], booster, getattr(booster, "best_iteration_", None) or None)
            state.setdefault("calibrator", RevenueScale(1.0))
            state.setdefault("candidate", "lightgbm")
        self.__dict__.update(state)

    def example_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A few rows of what a caller sends: the features, without the derived lifetime ones."""
        return self.schema.example_input(frame, derived=tuple(LIFETIME_FEATURES))

    def prepare(self, frame: pd.DataFrame) -> PreparedInput:
        """`frame` (what a caller sends) as this model reads it: the lifetime model's outputs
        added, the scorer's columns typed."""
        return prepare_input(self, frame)

    def predict(self, features: pd.DataFrame | PreparedInput) -> np.ndarray:
        """Predicted net revenue over the horizon (never negative), one per row."""
        return np.clip(self.calibrator.predict(self.scorer.value(prepared(self, features).scorer_input)), 0.0, None)

    def importance(self) -> pd.Series:
        return self.scorer.importance()
