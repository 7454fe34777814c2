"""Nightly scoring prepares each model's input of tonight's customers once (the lifetime
model's outputs, the scorer's typed columns) and reads it for prediction, reasons and drift:
the same probabilities, CLV, reasons and drift as each model preparing the plain features
anew for every call, on the demo world."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_catalog
from models.lifetime import LifetimeModel
from models.reason_check import count_contradictions
from models.reasons import top_reasons
from pipeline import tracking
from pipeline.at_risk.scores import active_features, explain_customers, score_customers, score_drift
from pipeline.at_risk.tiers import LOWEST_TIER
from pipeline.config import load_config
from pipeline.tables import load_tables
from tests.conftest import RUN_AT

AS_OF = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def tonight(demo_run: Path):
    """(config, tables, churn model, CLV model, features of the customers active at AS_OF)."""
    cfg = load_config(demo_run / "config.yaml")
    tables = load_tables(cfg.data.path, RUN_AT, None)
    churn, clv = tracking.load_champions(cfg.tracking)
    return cfg, tables, churn.fitted, clv.fitted, active_features(tables, cfg, AS_OF)


def test_scoring_equals_each_model_preparing_the_features_for_every_call(tonight, monkeypatch):
    cfg, tables, churn, clv, features = tonight
    computed = []  # the rows of every lifetime-model pass, the first step of preparing an input
    original = LifetimeModel.features

    def counted(self, frame):
        computed.append(len(frame))
        return original(self, frame)

    monkeypatch.setattr(LifetimeModel, "features", counted)
    scored, drift = score_customers(tables, cfg, AS_OF, churn, clv)
    assert computed == [len(features)] * 2  # once per model, for every customer
    monkeypatch.undo()

    probability = churn.predict(features)  # each call prepares the plain features itself
    np.testing.assert_array_equal(scored["churn_probability"].to_numpy(), probability)
    np.testing.assert_array_equal(scored["predicted_clv"].to_numpy(), clv.predict(features))
    explained = scored["risk_tier"].to_numpy() != LOWEST_TIER
    assert 0 < explained.sum() < len(scored)
    subset = features[explained]
    texts, _ = top_reasons(subset, churn.contributions(subset), feature_catalog(cfg.features),
                           cfg.scoring.reasons_per_customer, population=features)
    assert scored.loc[explained, "top_reasons"].tolist() == texts and any(texts)
    assert (scored.loc[~explained, "top_reasons"] == "").all()
    assert scored.attrs["reason_contradictions"] == count_contradictions(texts, subset, features)
    assert len(drift) > 1 and drift == score_drift(features, probability, churn)


def test_a_model_input_is_read_only_by_the_model_that_prepared_it(tonight):
    _, _, churn, clv, features = tonight
    with pytest.raises(ValueError, match="prepared by another model"):
        churn.predict(clv.prepare(features))


def test_the_rows_of_a_prepared_input_are_those_rows_prepared(tonight):
    _, _, churn, _, features = tonight
    some = np.arange(len(features)) % 3 == 0
    pd.testing.assert_frame_equal(churn.contributions(churn.prepare(features).rows(some)),
                                  churn.contributions(features[some]))


def test_spark_batches_explain_from_their_own_input_as_the_whole_population_does(tonight):
    """Spark explains batch by batch (pipeline/engines/spark_scoring.py), each batch's input
    prepared on its worker: the same rows as explaining everyone at once."""
    from pipeline.engines.spark_scoring import typical_customer

    cfg, _, churn, clv, features = tonight
    probability, value = churn.predict(features), clv.predict(features)
    whole = explain_customers(churn.prepare(features), probability, value, churn, cfg)
    half = len(features) // 2
    parts = [explain_customers(churn.prepare(features.iloc[rows]), probability[rows], value[rows], churn, cfg,
                               typical_customer(features)) for rows in (slice(0, half), slice(half, None))]
    pd.testing.assert_frame_equal(pd.concat(parts), whole)
    assert sum(p.attrs["reason_contradictions"] for p in parts) == whole.attrs["reason_contradictions"]
