"""What a feature is: its declaration (name, stage, kind, one-line description, reason
family), the type every numeric feature has, and the keys of every feature frame.

Free of every other module of the project, so that the models can read feature
declarations without loading the engine or the pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

KEYS = ["customer_id", "cutoff_date"]  # one row per customer and cutoff

# Every numeric feature is a 32-bit float, in training and in scoring alike: seven significant
# digits are more than any model needs (money sums are exact in the engine, then rounded to
# them), and a 12-cutoff stack of a million customers (6M rows x 83 numeric features) then
# takes 2.0 GB instead of 4.0 GB.
FEATURE_DTYPE = np.float32
FEATURE_SQL_TYPE = "FLOAT"  # the engine's name for it


@dataclass(frozen=True)
class Feature:
    name: str
    stage: str
    description: str
    kind: Literal["numeric", "categorical"] = "numeric"
    # The reason family (models/reason_families.py) the feature speaks for on the at-risk
    # list; None: its stage's family, filled in by features/catalog.py.
    family: str | None = None
