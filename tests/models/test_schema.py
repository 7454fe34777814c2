"""The model's view of its input: the numeric type and categories it was trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.schema import FeatureSchema

FRAME = pd.DataFrame({
    "days_since_last_purchase": np.array([3.0, 40.0, np.nan], dtype=np.float32),
    "revenue_total": np.array([19.99, 1234.5, 0.0], dtype=np.float32),
    "country": pd.Series(["DE", None, "FR"], dtype="str"),
    "never_seen": [np.nan, np.nan, np.nan],
})


def test_a_new_model_learns_float32_numbers_and_the_categories_it_saw():
    schema = FeatureSchema.from_frame(FRAME, ["days_since_last_purchase", "revenue_total", "country", "never_seen"])
    assert schema.numeric == ("days_since_last_purchase", "revenue_total")  # all-missing columns are left out
    assert schema.categories == {"country": ("DE", "FR")} and schema.dtype == "float32"
    client = pd.DataFrame({"days_since_last_purchase": [3.0], "revenue_total": [19.99], "country": ["IT"]})
    prepared = schema.prepare(client)
    assert prepared["revenue_total"].dtype == np.float32
    assert prepared["revenue_total"].iloc[0] == FRAME["revenue_total"].iloc[0]  # what training saw
    assert prepared["country"].isna().all()  # unseen in training: missing, never a shifted code


def test_a_model_saved_before_float32_features_keeps_its_float64_inputs():
    old = FeatureSchema.__new__(FeatureSchema)  # as unpickled from an older model: no dtype field
    old.__dict__.update(numeric=("revenue_total",), categories={})
    prepared = old.prepare(pd.DataFrame({"revenue_total": [19.99]}))
    assert prepared["revenue_total"].dtype == np.float64 and prepared["revenue_total"].iloc[0] == 19.99
