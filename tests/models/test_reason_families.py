"""The reason-family registry is the one list of families: features, texts and actions meet there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import STAGES, feature_catalog
from models.reason_check import count_contradictions
from models.reason_families import FAMILIES
from models.reasons import family_contributions, top_reasons
from pipeline.config import ActionConfig, FeaturesConfig, parse_config
from pipeline.errors import ConfigError


def test_every_feature_speaks_for_a_registered_family():
    catalog = feature_catalog(FeaturesConfig())
    assert {f.family for f in catalog} <= set(FAMILIES)
    assert {stage.family for stage in STAGES} <= set(FAMILIES)
    # and every family has features (or it could never be a reason)
    assert set(FAMILIES) <= {f.family for f in catalog}


def test_rfm_money_features_are_spend_discount_and_refund_reasons():
    family = {f.name: f.family for f in feature_catalog(FeaturesConfig())}
    assert family["revenue_90d"] == family["average_order_value"] == "spend"
    assert family["discount_revenue_share"] == "discounts"
    assert family["refunds_total"] == family["refund_share"] == "refunds"
    assert family["days_since_last_purchase"] == family["purchases_30d"] == "purchase_lapse"
    assert family["open_tickets"] == "support" and family["nps_last"] == "nps"


def test_the_default_actions_come_from_the_registry():
    assert ActionConfig().by_reason == {name: family.action for name, family in FAMILIES.items()}
    # a family the config leaves out keeps its default action
    partial = ActionConfig(by_reason={"support": "call them today"}).by_reason
    assert partial["support"] == "call them today" and partial["nps"] == FAMILIES["nps"].action


def test_the_config_accepts_only_registered_family_names():
    with pytest.raises(ConfigError, match="by_reason"):
        parse_config({"scoring": {"actions": {"by_reason": {"suport": "call"}}}})


# A customer with nothing risky to say in any family: a recent regular buyer with rising
# engagement and spend, no refunds or tickets, a promoter, a long-standing loyalty member.
SAFE = {
    "days_since_last_purchase": 10.0, "mean_days_between_purchases": 30.0, "purchase_trend": 1.2,
    "days_since_first_purchase": 400.0, "purchases_total": 14.0, "revenue_90d": 300.0, "revenue_total": 1200.0,
    "discount_revenue_share": 0.05, "refunds_total": 0.0, "refund_share": 0.0,
    "days_since_last_interaction": 3.0, "engagement_trend": 1.5, "interactions_total": 40.0,
    "open_tickets": 0.0, "days_oldest_open_ticket": np.nan, "complaints_total": 0.0, "slow_ticket_share": 0.0,
    "csat_last": 5.0, "effort_last": 2.0, "nps_last": 10.0, "nps_class": "promoter", "nps_change": 0.0,
    "fee_downgrades": 0.0, "subscriptions_ended": 0.0, "has_active_subscription": 1.0,
    "months_on_current_subscription": 24.0, "is_loyalty_member": 1.0, "days_since_signup": 900.0,
}
# The scored population the typical customer comes from (medians: gap 30, 5 purchases,
# spend 200, discount share 10%, silence 12 days, 14 months on the plan, 400 days since signup).
POPULATION = pd.DataFrame([SAFE] * 3).assign(
    mean_days_between_purchases=[20.0, 30.0, 40.0], purchases_total=[2.0, 5.0, 14.0], revenue_90d=[100.0, 200.0, 300.0],
    discount_revenue_share=[0.0, 0.1, 0.3], days_since_last_interaction=[5.0, 12.0, 30.0],
    months_on_current_subscription=[6.0, 14.0, 30.0], days_since_signup=[100.0, 400.0, 900.0])

RISKY = [  # family, the customer's values that differ from SAFE, the reason text
    ("purchase_lapse", {"days_since_last_purchase": 94.0, "mean_days_between_purchases": 21.0},
     "no purchase for 94 days (usually every 21)"),
    ("purchase_lapse", {"purchase_trend": 0.5}, "purchase trend falling (index 0.5 where 1 is steady)"),
    ("purchase_lapse", {"days_since_last_purchase": 94.0, "mean_days_between_purchases": np.nan},
     "no second purchase in 94 days (typical customer: every 30 days)"),
    ("purchase_lapse", {"mean_days_between_purchases": 173.0, "days_since_last_purchase": 30.0},
     "buys every 173 days on average (typical customer: every 30)"),
    ("purchase_lapse", {"purchases_total": 1.0, "mean_days_between_purchases": np.nan},
     "only 1 purchase(s) so far (typical customer: 5)"),
    ("spend", {"revenue_90d": 40.0, "revenue_total": 1240.0},
     "spent 40 in the last 90 days (down from 348 per 90 days before)"),
    ("spend", {"revenue_90d": 40.0, "revenue_total": 60.0, "days_since_first_purchase": 120.0},
     "spent 40 in the last 90 days (typical customer: 200)"),
    ("discounts", {"discount_revenue_share": 0.42}, "42% of purchase value discounted (typical customer: 10%)"),
    ("refunds", {"refunds_total": 2.0, "refund_share": 0.15}, "2 refund(s) or return(s) (15% of purchase value)"),
    ("engagement", {"days_since_last_interaction": 45.0},
     "no interaction on any channel for 45 days (typical customer: 12)"),
    ("engagement", {"engagement_trend": 0.4}, "engagement trend falling (index 0.4 where 1 is steady)"),
    ("engagement", {"days_since_last_interaction": np.nan, "interactions_total": 0.0},
     "no interaction on any channel yet"),
    ("support", {"open_tickets": 2.0, "days_oldest_open_ticket": 12.0}, "2 support ticket(s) open (oldest for 12 days)"),
    ("support", {"complaints_total": 1.0}, "1 complaint(s) filed"),
    ("support", {"slow_ticket_share": 0.4}, "40% of resolved support tickets were late"),
    ("support", {"csat_last": 3.0}, "last support satisfaction 3/5 (satisfied is 4 or more)"),
    ("support", {"effort_last": 6.0}, "last support effort 6/7 (high is 5 or more)"),
    ("nps", {"nps_last": 3.0, "nps_class": "detractor", "nps_change": np.nan}, "NPS 3 (detractor)"),
    ("nps", {"nps_last": 8.0, "nps_class": "passive", "nps_change": -2.0}, "NPS down from 10 to 8 (passive)"),
    ("subscription", {"fee_downgrades": 1.0}, "downgraded plan 1 time(s)"),
    ("subscription", {"subscriptions_ended": 1.0, "has_active_subscription": 0.0,
                      "months_on_current_subscription": np.nan}, "1 subscription(s) ended and none active"),
    ("subscription", {"months_on_current_subscription": 2.0}, "on the current plan for 2 months (typical customer: 14)"),
    ("profile", {"is_loyalty_member": 0.0}, "not a loyalty-programme member"),
    ("profile", {"days_since_signup": 40.0}, "customer for 40 days (typical customer: 400)"),
]

SAFE_ALIKE = [  # values on the safe side of the reference a risky text would name: no reason
    ("purchase_lapse", {"days_since_last_purchase": 9.0, "mean_days_between_purchases": 25.0}),
    ("purchase_lapse", {"days_since_last_purchase": 21.0, "mean_days_between_purchases": 21.0}),
    ("purchase_lapse", {"days_since_last_purchase": 20.0, "mean_days_between_purchases": np.nan,
                        "purchases_total": 5.0}),
    ("spend", {"revenue_90d": 270.0, "revenue_total": 1170.0}),  # above its earlier 261 and the typical 200
    ("discounts", {"discount_revenue_share": 0.10}),
    ("engagement", {"days_since_last_interaction": 12.0, "engagement_trend": 6.0}),
    ("engagement", {"engagement_trend": 0.96}),  # shows as 1.0x: not falling in words
    ("support", {"csat_last": 4.0, "effort_last": 4.0, "slow_ticket_share": 0.004}),
    ("nps", {"nps_last": 9.0, "nps_class": "promoter", "nps_change": -1.0}),
    ("nps", {"nps_last": np.nan, "nps_class": None}),  # never answered: no reference to speak from
    ("subscription", {"has_active_subscription": 0.0, "months_on_current_subscription": np.nan}),
    ("profile", {"days_since_signup": np.nan}),
]


def customer(**changes) -> pd.DataFrame:
    return pd.DataFrame([SAFE | changes])


@pytest.mark.parametrize("family", list(FAMILIES))
def test_no_family_has_a_reason_for_the_safe_customer(family):
    assert FAMILIES[family].text(customer(), POPULATION).tolist() == [""]


@pytest.mark.parametrize(("family", "changes", "expected"), RISKY, ids=[text for _, _, text in RISKY])
def test_each_family_names_the_risky_side_of_its_reference_and_the_checker_agrees(family, changes, expected):
    risky = customer(**changes)
    assert FAMILIES[family].text(risky, POPULATION).tolist() == [expected]
    assert count_contradictions([expected], risky, POPULATION) == 0
    # the same words said of the safe customer contradict their features
    assert count_contradictions([expected], customer(), POPULATION) == 1


@pytest.mark.parametrize(("family", "changes"), SAFE_ALIKE, ids=[str(c) for _, c in SAFE_ALIKE])
def test_a_family_on_the_safe_side_of_its_reference_is_silent(family, changes):
    assert FAMILIES[family].text(customer(**changes), POPULATION).tolist() == [""]


def test_every_family_is_covered_by_a_risky_case():
    assert {family for family, _, _ in RISKY} == set(FAMILIES)


def test_writers_are_vectorised_over_rows_and_take_the_typical_customer_from_the_population():
    rows = pd.concat([customer(days_since_last_interaction=45.0), customer()], ignore_index=True)
    assert FAMILIES["engagement"].text(rows, POPULATION).tolist() == [
        "no interaction on any channel for 45 days (typical customer: 12)", ""]
    quieter = POPULATION.assign(days_since_last_interaction=[40.0, 50.0, 60.0])
    assert FAMILIES["engagement"].text(rows, quieter).tolist() == ["", ""]


def test_contributions_sum_per_family_and_the_strongest_raising_family_leads():
    catalog = feature_catalog(FeaturesConfig())
    contributions = pd.DataFrame({"days_since_last_purchase": [0.8, -0.5], "purchases_30d": [0.3, -0.1],
                                  "open_tickets": [0.5, 0.2], "revenue_90d": [-0.2, -0.3]})
    by_family = family_contributions(contributions, catalog)
    assert by_family.loc[0, "purchase_lapse"] == pytest.approx(1.1)
    features = pd.DataFrame([SAFE | {"days_since_last_purchase": 94.0, "mean_days_between_purchases": 21.0,
                                     "open_tickets": 1.0, "days_oldest_open_ticket": 12.0, "revenue_90d": 0.0},
                             SAFE | {"open_tickets": 2.0, "days_oldest_open_ticket": 3.0}])
    texts, main = top_reasons(features, contributions, catalog, count=2)
    assert main == ["purchase_lapse", "support"]
    assert texts[0] == "no purchase for 94 days (usually every 21); 1 support ticket(s) open (oldest for 12 days)"
    # only families that raise the risk are reasons: customer 2's lapse and spend lower it
    assert texts[1] == "2 support ticket(s) open (oldest for 3 days)"


def test_a_raising_family_with_nothing_risky_to_say_gives_its_place_to_the_next():
    catalog = feature_catalog(FeaturesConfig())
    # lapse raises the risk most, but the customer bought 9 days ago and usually every 25;
    # engagement comes next, but rises 6x; then NPS (a promoter), then support and profile
    contributions = pd.DataFrame({"days_since_last_purchase": [0.9], "engagement_trend": [0.7], "nps_last": [0.6],
                                  "open_tickets": [0.5], "is_loyalty_member": [0.4], "revenue_90d": [0.3]})
    features = customer(days_since_last_purchase=9.0, mean_days_between_purchases=25.0, engagement_trend=6.0,
                        open_tickets=1.0, days_oldest_open_ticket=5.0, is_loyalty_member=0.0)
    texts, main = top_reasons(features, contributions, catalog, count=2, population=POPULATION)
    assert texts == ["1 support ticket(s) open (oldest for 5 days); not a loyalty-programme member"]
    assert main == ["support"]  # the action follows the first reason shown
    # nothing risky to say in any raising family: no reason and no main family
    texts, main = top_reasons(customer(), contributions, catalog, count=3, population=POPULATION)
    assert texts == [""] and main == [None]


def test_a_recent_purchase_of_an_infrequent_buyer_is_never_called_a_lapse():
    # bought 9 days ago, usually every 86: not overdue; what is risky is buying so rarely
    rare = customer(days_since_last_purchase=9.0, mean_days_between_purchases=86.0)
    assert FAMILIES["purchase_lapse"].text(rare, POPULATION).tolist() == [
        "buys every 86 days on average (typical customer: every 30)"]


def test_the_lifetime_models_outputs_speak_for_a_purchase_lapse():
    from models.lifetime import LIFETIME_FEATURES
    from models.reason_families import LIFETIME_FAMILY, UNKNOWN_FAMILY

    assert LIFETIME_FAMILY in FAMILIES and UNKNOWN_FAMILY not in FAMILIES
    contributions = pd.DataFrame({name: [0.1] for name in LIFETIME_FEATURES} | {"no_such_feature": [0.5]})
    by_family = family_contributions(contributions, feature_catalog(FeaturesConfig()))
    assert by_family.loc[0, LIFETIME_FAMILY] == pytest.approx(0.1 * len(LIFETIME_FEATURES))
    assert by_family.loc[0, UNKNOWN_FAMILY] == pytest.approx(0.5)
