"""The reason-family registry is the one list of families: features, texts and actions meet there."""

from __future__ import annotations

import pandas as pd
import pytest

from features.catalog import STAGES, feature_catalog
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


def test_contributions_sum_per_family_and_the_strongest_raising_family_leads():
    catalog = feature_catalog(FeaturesConfig())
    contributions = pd.DataFrame({"days_since_last_purchase": [0.8, -0.5], "purchases_30d": [0.3, -0.1],
                                  "open_tickets": [0.5, 0.2], "revenue_90d": [-0.2, -0.3]})
    by_family = family_contributions(contributions, catalog)
    assert by_family.loc[0, "purchase_lapse"] == pytest.approx(1.1)
    features = pd.DataFrame({"days_since_last_purchase": [94.0, 10.0], "mean_days_between_purchases": [21.0, 12.0],
                             "purchases_30d": [0.0, 1.0], "open_tickets": [1.0, 2.0],
                             "days_oldest_open_ticket": [12.0, 3.0], "revenue_90d": [0.0, 50.0],
                             "revenue_total": [300.0, 900.0]})
    texts, main = top_reasons(features, contributions, catalog, count=2)
    assert main == ["purchase_lapse", "support"]
    assert texts[0] == "no purchase for 94 days (usually every 21); 1 support ticket(s) open, oldest for 12 days"
    # only families that raise the risk are reasons: customer 2's lapse and spend lower it
    assert texts[1] == "2 support ticket(s) open, oldest for 3 days"
