"""Path attributions: fast per-row contributions read off the trees, which add up to the
model's log-odds exactly and name the same strongest driver as exact SHAP for most rows."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models.attribution import PathAttribution


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(4000, 5)), columns=["recency", "frequency", "tickets", "nps", "noise"])
    frame["channel"] = pd.Categorical(rng.choice(["web", "app", "store"], len(frame)))
    logit = 1.5 * frame["recency"] - frame["frequency"] + 0.8 * frame["tickets"] * (frame["nps"] < 0)
    logit += 0.7 * (frame["channel"] == "store")
    labels = (logit + rng.logistic(size=len(frame)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=80, num_leaves=15, learning_rate=0.1, min_child_samples=20,
                               n_jobs=1, verbose=-1, random_state=0).fit(frame, labels)
    return model.booster_, frame


def test_attributions_add_up_to_the_log_odds(fitted):
    booster, frame = fitted
    paths = PathAttribution(booster, list(frame.columns))
    found = paths.explain(booster, frame, chunk_rows=1000)  # several chunks
    assert list(found.columns) == list(frame.columns) and found.index.equals(frame.index)
    raw = booster.predict(frame, raw_score=True)
    np.testing.assert_allclose(found.sum(axis=1) + paths.base_value, raw, atol=1e-9)


def test_a_feature_the_trees_never_split_on_gets_nothing(fitted):
    booster, frame = fitted
    unused = [name for name, gain in zip(frame.columns, booster.feature_importance("split"), strict=True) if gain == 0]
    found = PathAttribution(booster, list(frame.columns)).explain(booster, frame)
    for name in unused:
        assert (found[name] == 0).all()


def test_the_strongest_driver_agrees_with_exact_shap_for_most_rows(fitted):
    booster, frame = fitted
    fast = PathAttribution(booster, list(frame.columns)).explain(booster, frame).to_numpy()
    exact = booster.predict(frame, pred_contrib=True)[:, :-1]
    agreement = (fast.argmax(axis=1) == exact.argmax(axis=1)).mean()
    assert agreement > 0.85
    # and the attributions move together with SHAP overall
    assert np.corrcoef(fast.ravel(), exact.ravel())[0, 1] > 0.9


def test_early_stopped_models_use_only_their_best_trees(fitted):
    booster, frame = fitted
    paths = PathAttribution(booster, list(frame.columns), num_iteration=30)
    found = paths.explain(booster, frame.head(200))
    raw = booster.predict(frame.head(200), raw_score=True, num_iteration=30)
    np.testing.assert_allclose(found.sum(axis=1) + paths.base_value, raw, atol=1e-9)


def test_predictions_are_the_same_on_any_number_of_threads(fitted):
    # models/churn.py predicts on every core; that must not change a single score.
    booster, frame = fitted
    assert np.array_equal(booster.predict(frame, num_threads=1), booster.predict(frame, num_threads=2))
    assert np.array_equal(booster.predict(frame, pred_leaf=True, num_threads=1),
                          booster.predict(frame, pred_leaf=True, num_threads=2))
