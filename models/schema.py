"""The model's view of its input: which features, in which order, with which categories.

Saved inside every fitted model, so scoring prepares its input exactly as training did
(categories unseen in training become missing instead of shifting the codes)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.feature import FEATURE_DTYPE


@dataclass(frozen=True)
class FeatureSchema:
    numeric: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    # The numeric type the model was trained on. Models saved before features became float32
    # have no such field and read this default: they keep seeing the inputs they learned from.
    dtype: str = "float64"

    @property
    def names(self) -> list[str]:
        return [*self.numeric, *self.categories]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, candidates: list[str]) -> FeatureSchema:
        """Learn the schema from a training frame. Columns that are missing everywhere (a
        table or column the data does not have) carry no information and are left out."""
        usable = [c for c in candidates if c in frame and frame[c].notna().any()]
        categorical = {
            c: tuple(sorted(str(v) for v in frame[c].dropna().unique()))
            for c in usable
            if isinstance(frame[c].dtype, pd.CategoricalDtype) or frame[c].dtype == object
            or pd.api.types.is_string_dtype(frame[c].dtype)
        }
        numeric = tuple(c for c in usable if c not in categorical)
        return cls(numeric, categorical, np.dtype(FEATURE_DTYPE).name)

    def prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.names if c not in frame]
        if missing:
            raise ValueError(f"input lacks feature column(s) the model was trained on: {missing}")
        out = pd.DataFrame(index=frame.index)
        for name in self.numeric:
            # the type the features are built in (float32): a scoring client's float64
            # values become exactly what training saw
            out[name] = pd.to_numeric(frame[name], errors="coerce").astype(self.dtype)
        for name, levels in self.categories.items():
            values = frame[name].astype("object").where(frame[name].notna(), None)
            out[name] = pd.Categorical(values.map(lambda v: None if v is None else str(v)), categories=list(levels))
        return out

    def example_input(self, frame: pd.DataFrame, rows: int = 5, derived: tuple[str, ...] = ()) -> pd.DataFrame:
        """Plain types (float, str) as a CSV or JSON client would send them; `derived`
        columns are computed inside the model and are not part of its input."""
        example = frame[[n for n in self.names if n not in derived]].head(rows).copy()
        for name in self.numeric:
            if name in example:
                example[name] = example[name].astype(np.float64)
        for name in self.categories:
            example[name] = example[name].astype("object").where(example[name].notna(), "").astype(str)
        return example
