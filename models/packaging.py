"""Wrap a fitted model as an MLflow pyfunc model whose `predict` returns what scoring needs:
calibrated churn probabilities, or predicted CLV. The fitted object inside is the one
training evaluated; scoring unwraps it for per-customer contributions."""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd


class PyfuncModel(mlflow.pyfunc.PythonModel):
    def __init__(self, model) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        return self.model.predict(model_input)
