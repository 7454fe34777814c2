"""The churn model that ships: whichever candidate won the backtest (models/forward/), its
calibration fitted on out-of-time predictions, and the lifetime model whose outputs it
reads, as one object: `predict` gives the probability of churning within the horizon and
`contributions` the per-feature pushes behind it that the reasons are written from. Each
reads plain features, or the input `prepare` made of them once (models/prepared.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.drift import distribution_reference
from models.forward.calibration import PlattCalibrator
from models.forward.scorers import BoosterScorer
from models.lifetime import LIFETIME_FEATURES, LifetimeModel
from models.prepared import PreparedInput, prepare_input, prepared
from models.schema import FeatureSchema

# PlattCalibrator is named here too: champions pickled before the candidates competed refer
# to models.churn.PlattCalibrator, whose two numbers mean the same on the booster's log-odds.
__all__ = ["ChurnModel", "PlattCalibrator", "drift_reference"]


@dataclass
class ChurnModel:
    schema: FeatureSchema  # the columns a caller sends (lifetime outputs are derived inside)
    scorer: object  # a scorer of models/forward/scorers.py: log-odds and contributions
    calibrator: PlattCalibrator
    lifetime: LifetimeModel
    candidate: str = "lightgbm"
    # Training-time distributions of the score and the strongest features (drift guard).
    reference: dict[str, dict] = field(default_factory=dict)

    def __setstate__(self, state: dict) -> None:
        # A champion pickled before candidates competed held a booster and a calibrator of
        # the booster's probability; that is this model with a booster scorer, the same scores.
        if "booster" in state:
            booster = state.pop("booster")
            state["scorer"] = BoosterScorer(state["schema"], booster, getattr(booster, "best_iteration_", None) or None)
            state.setdefault("candidate", "lightgbm")
            state.pop("_path_attribution", None)
        self.__dict__.update(state)

    def prepare(self, frame: pd.DataFrame) -> PreparedInput:
        """`frame` (what a caller sends) as this model reads it, for any number of the
        methods below: the lifetime model's outputs added, the scorer's columns typed."""
        return prepare_input(self, frame)

    def example_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A few rows of what a caller sends: the features, without the derived lifetime ones."""
        return self.schema.example_input(frame, derived=tuple(LIFETIME_FEATURES))

    def predict(self, features: pd.DataFrame | PreparedInput) -> np.ndarray:
        """Calibrated probability of churning within the horizon, one per row."""
        return self.calibrator.predict(self.scorer.link(prepared(self, features).scorer_input))

    def drift_inputs(self, features: pd.DataFrame | PreparedInput, probability: np.ndarray) -> dict[str, np.ndarray]:
        """The values whose distribution is compared with `reference`."""
        reference = getattr(self, "reference", {})
        inputs = prepared(self, features) if set(reference) - {"churn_probability"} else None
        return {name: probability if name == "churn_probability" else inputs.column(name).to_numpy(dtype=float)
                for name in reference}

    def contributions(self, features: pd.DataFrame | PreparedInput) -> pd.DataFrame:
        """Per-row, per-feature contributions to the churn log-odds (fast enough for every
        customer), scaled by the calibration so they add up to the calibrated log-odds."""
        return self.scorer.contributions(prepared(self, features).scorer_input) * self.calibrator.slope

    def shap_values(self, features: pd.DataFrame | PreparedInput) -> pd.DataFrame:
        """Exact SHAP values (for a booster about 1 ms a row): for samples, plots and checking
        `contributions`."""
        return self.scorer.exact_contributions(prepared(self, features).scorer_input) * self.calibrator.slope

    def importance(self) -> pd.Series:
        return self.scorer.importance()


def input_schema(frame: pd.DataFrame, features: list[str]) -> FeatureSchema:
    """What a caller sends: every feature, as training saw them (a candidate may read fewer)."""
    return FeatureSchema.from_frame(frame, [f for f in features if f not in LIFETIME_FEATURES])


def drift_reference(model: ChurnModel, frame: pd.DataFrame, top_features: int = 5) -> dict[str, dict]:
    """Distributions of the churn probability and of the numeric inputs the model leans on
    most, on the freshest training rows."""
    inputs = model.prepare(frame)
    numeric = [n for n in model.importance().sort_values(ascending=False).index
               if inputs.has(n) and pd.api.types.is_numeric_dtype(inputs.column(n))][:top_features]
    reference = {"churn_probability": distribution_reference(model.predict(inputs))}
    return reference | {name: distribution_reference(inputs.column(name).to_numpy(dtype=float)) for name in numeric}
