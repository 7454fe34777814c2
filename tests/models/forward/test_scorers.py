"""Whatever candidate ships, its contributions add up to its score (minus a constant), so the
reasons on the list are the drivers of that very score: exact for the logistic regression
and the BG/NBD score, weighted parts for a blend, path attributions for the booster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.forward.candidates import CHURN, fit_booster, fit_lifetime, fit_logistic
from models.forward.scorers import BlendScorer
from tests.models.forward.test_backtest import FEATURES, ORIGINS, customers, linear

COLUMNS = [*FEATURES, "bgnbd_probability_no_purchase"]


@pytest.fixture(scope="module")
def rows() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(4)
    training = customers(rng, 3_000, ORIGINS[0], linear)
    training["segment"] = pd.Categorical(rng.choice(["a", "b", "c"], len(training)))  # one-hot columns too
    training.loc[training.sample(frac=0.1, random_state=1).index, "x3"] = np.nan  # and missing indicators
    scored = training.sample(500, random_state=2)
    return training, scored


def assert_adds_up(scorer, scored: pd.DataFrame, exact: bool) -> None:
    inputs = scorer.prepare(scored)
    total = scorer.contributions(inputs).sum(axis=1).to_numpy()
    offset = scorer.link(inputs) - total
    assert np.ptp(offset) < (1e-6 if exact else 1e-3)  # the same constant for every row


def test_logistic_contributions_are_exact_per_feature(rows):
    training, scored = rows
    scorer = fit_logistic(training, training["is_churned"], [*COLUMNS, "segment"], seed=1, strength=0.5)
    contributions = scorer.contributions(scorer.prepare(scored))
    assert set(contributions.columns) == {*COLUMNS, "segment"}  # indicator and one-hot columns folded back
    assert_adds_up(scorer, scored, exact=True)
    # x0 raises churn in this world: its contribution rises with x0 (through the signed log)
    assert scored["x0"].corr(contributions["x0"], method="spearman") > 0.999


def test_the_bgnbd_score_has_one_contribution(rows):
    training, scored = rows
    scorer = fit_lifetime(CHURN, training)
    assert list(scorer.contributions(scorer.prepare(scored)).columns) == ["bgnbd_probability_no_purchase"]
    assert_adds_up(scorer, scored, exact=True)


def test_booster_attributions_add_up_to_its_log_odds(rows):
    training, scored = rows
    scorer, _ = fit_booster(CHURN, {"num_leaves": 7, "min_child_samples": 30}, 1, training, training["is_churned"],
                            COLUMNS, rounds=60)
    assert_adds_up(scorer, scored, exact=False)


def test_a_blend_weighs_its_parts_contributions(rows):
    training, scored = rows
    logistic = fit_logistic(training, training["is_churned"], COLUMNS, seed=1, strength=0.5)
    lifetime = fit_lifetime(CHURN, training)
    blend = BlendScorer({"logistic": logistic, "bgnbd": lifetime}, {"logistic": 0.7, "bgnbd": 0.3}, intercept=0.1)
    assert_adds_up(blend, scored, exact=True)
    expected = 0.7 * logistic.contributions(logistic.prepare(scored))["x0"]
    pd.testing.assert_series_equal(blend.contributions(blend.prepare(scored))["x0"], expected, check_names=False)


def test_a_level_of_a_category_is_credited_to_its_category_not_to_a_feature_named_like_it():
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"plan": pd.Categorical(rng.choice(["type_a", "basic"], 400)),
                          "plan_type": rng.normal(size=400).astype(np.float32),
                          "cutoff_date": pd.Timestamp("2025-01-01")})
    target = pd.Series((rng.random(400) < 0.5).astype(float))
    scorer = fit_logistic(frame, target, ["plan", "plan_type"], seed=1, strength=0.5)
    names = scorer.pipeline[:-1].get_feature_names_out()
    assert {str(names[i]) for i in scorer.columns_of["plan"]} == {"categorical__plan_type_a", "categorical__plan_basic"}
    assert [str(names[i]) for i in scorer.columns_of["plan_type"]] == ["numeric__plan_type"]


def test_a_blend_prepares_each_part_as_the_part_itself_does(rows):
    training, scored = rows
    features = [*COLUMNS, "segment"]
    booster, _ = fit_booster(CHURN, {"num_leaves": 7, "min_child_samples": 30}, 1, training, training["is_churned"],
                             features, rounds=30)
    logistic = fit_logistic(training, training["is_churned"], features, seed=1, strength=0.5)
    lifetime = fit_lifetime(CHURN, training)
    parts = {"lightgbm": booster, "logistic": logistic, "bgnbd": lifetime}
    blend = BlendScorer(parts, {"lightgbm": 0.5, "logistic": 0.3, "bgnbd": 0.2}, intercept=-0.1)
    inputs = blend.prepare(scored)
    for name, part in parts.items():  # its columns, order and types: a booster reads categories by their codes
        pd.testing.assert_frame_equal(inputs[name], part.prepare(scored))
    expected = -0.1 + sum(w * parts[n].link(parts[n].prepare(scored)) for n, w in blend.weights.items())
    np.testing.assert_allclose(blend.link(inputs), expected, rtol=1e-12)
    one = scored.index[:1]
    np.testing.assert_allclose(blend.link(inputs.loc[one]), expected[:1], rtol=1e-12)  # rows of it: those rows


def test_a_booster_refuses_a_frame_its_prepare_did_not_make(rows):
    training, scored = rows
    booster, _ = fit_booster(CHURN, {"num_leaves": 7, "min_child_samples": 30}, 1, training, training["is_churned"],
                             COLUMNS, rounds=10)
    with pytest.raises(ValueError, match="reads the frame its `prepare` made"):
        booster.link(scored[list(reversed(COLUMNS))])  # the right columns, in another order
