"""Baselines the models must beat, trained and evaluated on the same split.

- churn: a logistic regression on the same features (imputation, scaling and one-hot
  encoding fitted inside the pipeline, on the training cutoffs only), and a rule from
  retention practice: how overdue the customer is relative to their own typical gap;
- CLV: the formula from retention practice (see models/probabilistic.py for BG/NBD with
  Gamma-Gamma)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.schema import FeatureSchema


def train_logistic_baseline(frame: pd.DataFrame, labels: pd.Series, feature_names: list[str], seed: int) -> Pipeline:
    schema = FeatureSchema.from_frame(frame, feature_names)
    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="ignore", min_frequency=20))
    columns = ColumnTransformer([("numeric", numeric, list(schema.numeric)),
                                 ("categorical", categorical, list(schema.categories))])
    model = Pipeline([("columns", columns),
                      ("logistic", LogisticRegression(C=0.5, max_iter=2000, random_state=seed))])
    model.fit(_plain(frame, schema), labels)
    model.schema = schema
    return model


def predict_logistic_baseline(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(_plain(frame, model.schema))[:, 1]


def _plain(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Numeric columns as float; categoricals as text with NaN for missing (sklearn's
    imputer and encoder work on object columns)."""
    out = frame[schema.names].copy()
    for name in schema.categories:
        out[name] = out[name].astype(object).where(out[name].notna(), np.nan)
    return out


def overdue_rule_score(frame: pd.DataFrame) -> np.ndarray:
    """Days since the last purchase divided by the customer's typical gap between
    purchases; one-time buyers are measured against the population's median gap."""
    typical_gap = frame["mean_days_between_purchases"].fillna(frame["mean_days_between_purchases"].median())
    return (frame["days_since_last_purchase"] / typical_gap.clip(lower=1)).to_numpy(dtype=float)
