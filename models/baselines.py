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
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models.schema import FeatureSchema


def signed_log1p(x):
    """sign(x) log(1 + |x|): counts, amounts and day spans are long-tailed, and a linear
    model on their logarithm is far less at the mercy of a few extreme customers."""
    return np.sign(x) * np.log1p(np.abs(x))


def linear_columns(schema: FeatureSchema) -> ColumnTransformer:
    """Numeric features: signed log, median imputation with missing-value indicators,
    standardisation; categorical ones: one-hot (rare levels pooled). Fitted on training rows."""
    numeric = make_pipeline(FunctionTransformer(signed_log1p, feature_names_out="one-to-one"),
                            SimpleImputer(strategy="median", add_indicator=True), StandardScaler())
    categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="ignore", min_frequency=20))
    return ColumnTransformer([("numeric", numeric, list(schema.numeric)),
                              ("categorical", categorical, list(schema.categories))])


def train_logistic_baselines(frame: pd.DataFrame, labels: pd.Series, feature_names: list[str], seed: int,
                             strengths: tuple[float, ...] = (0.5,)) -> dict[float, Pipeline]:
    """Regularised logistic regressions, one per inverse regularisation strength, sharing one
    fitted transformation of the columns (fitted once: it costs as much as a fit)."""
    schema = FeatureSchema.from_frame(frame, feature_names)
    columns = linear_columns(schema).fit(plain_frame(frame, schema))
    matrix = columns.transform(plain_frame(frame, schema))
    models = {}
    for strength in strengths:
        # Newton steps on the Hessian: a few iterations for a few hundred standardised columns
        logistic = LogisticRegression(C=strength, solver="newton-cholesky", max_iter=200, random_state=seed)
        models[strength] = Pipeline([("columns", columns), ("logistic", logistic.fit(matrix, labels))])
        models[strength].schema = schema
        models[strength].training_mean = np.asarray(matrix.mean(axis=0)).ravel()  # for the contributions
    return models


def plain_frame(frame: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
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
