"""A model's input for some rows, prepared once for everything computed from those rows.

Scoring predicts, explains and checks the drift of the same customers with the same churn
model. Each step needs the customers' features turned into the model's input: the lifetime
model's outputs (models/lifetime.py) added, then every column in the scorer's order and
types (models/schema.py, models/forward/scorers.py). `prepare_input` does that once;
`PreparedInput` holds the result, and the models' `predict`, `contributions` and
`drift_inputs` read it as they are, or prepare plain features themselves (what a caller of
the logged model sends), each call anew."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.lifetime import with_lifetime


@dataclass(frozen=True, eq=False)
class PreparedInput:
    """What one model reads of some rows. Only the model that prepared it may read it: the
    churn and CLV models have lifetime models and scorers of their own."""

    model: object  # the ChurnModel or ClvModel that prepared it
    features: pd.DataFrame  # the rows as the caller sent them
    lifetime: pd.DataFrame  # the lifetime model's outputs for each row (LIFETIME_FEATURES)
    scorer_input: pd.DataFrame  # both, as the scorer reads them (its `prepare`)

    def __len__(self) -> int:
        return len(self.features)

    def column(self, name: str) -> pd.Series:
        """One column of the model's input as computed, before the scorer's typing: a
        lifetime output, or a feature as sent."""
        return self.lifetime[name] if name in self.lifetime else self.features[name]

    def has(self, name: str) -> bool:
        return name in self.lifetime or name in self.features

    def rows(self, which: np.ndarray) -> PreparedInput:
        """The prepared input of the rows where `which` (a boolean mask) is true."""
        return PreparedInput(self.model, self.features[which], self.lifetime[which], self.scorer_input[which])


def prepare_input(model, features: pd.DataFrame) -> PreparedInput:
    """`features` prepared for `model` (a ChurnModel or ClvModel: its `lifetime` and `scorer`)."""
    lifetime = model.lifetime.features(features)
    return PreparedInput(model, features, lifetime, model.scorer.prepare(with_lifetime(features, lifetime)))


def prepared(model, features: pd.DataFrame | PreparedInput) -> PreparedInput:
    """`features` as `model` reads them: prepared now when they are plain features, as they
    are when `model` prepared them already."""
    if not isinstance(features, PreparedInput):
        return prepare_input(model, features)
    if features.model is not model:
        raise ValueError("This input was prepared by another model: each model prepares its own (its lifetime "
                         "model and its scorer's columns are its own).")
    return features
