"""Who is active at a cutoff and who churned after it, for both churn definitions."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from features.population import build_active_spine, build_churn_labels, build_clv_labels
from pipeline.config import ChurnConfig
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_world


def tables_of(tmp_path, world=None):
    return load_tables(write_world(tmp_path / "data", world or tiny_world()), RUN_AT, None)


def labelled(tables, cutoff, churn) -> dict[str, int]:
    spine = build_active_spine(tables, [cutoff], churn)
    return dict(zip(spine["customer_id"], build_churn_labels(tables, spine, churn), strict=True))


def test_inactivity_churn_is_no_purchase_within_the_horizon(tmp_path):
    tables = tables_of(tmp_path)
    churn = ChurnConfig(horizon_days=90, active_lookback_days=365)
    # c1 buys on 2025-07-01 00:00 (exactly at the cutoff: inside the label window) and
    # 2025-09-01; c2 and c3 never buy again.
    assert labelled(tables, dt.date(2025, 7, 1), churn) == {"c1": 0, "c2": 1, "c3": 1}
    # As of 2025-07-02, c1's next purchase (2025-09-01) is 61 days later: retained at 90 days,
    # churned at 30 days.
    assert labelled(tables, dt.date(2025, 7, 2), churn)["c1"] == 0
    short = ChurnConfig(horizon_days=30, active_lookback_days=365)
    assert labelled(tables, dt.date(2025, 7, 2), short)["c1"] == 1


def test_customers_without_a_recent_purchase_are_not_eligible(tmp_path):
    tables = tables_of(tmp_path)
    churn = ChurnConfig(horizon_days=90, active_lookback_days=120)
    # c3's last purchase (2025-01-15) is 167 days before 2025-07-01: not active, not labelled.
    assert set(labelled(tables, dt.date(2025, 7, 1), churn)) == {"c1", "c2"}
    # Refunds do not make a customer active: c2's last positive purchase is 2025-04-02.
    assert "c2" not in labelled(tables, dt.date(2025, 8, 15), churn)


def test_subscription_churn_respects_plan_changes_and_the_grace_gap(tmp_path):
    world = tiny_world()
    world["subscriptions"] = pd.DataFrame({
        "subscription_id": ["s1", "s2", "s3", "s4", "s5"],
        "customer_id": ["c1", "c1", "c2", "c3", "c3"],
        "plan": ["plus", "basic", "plus", "plus", "plus"],
        "started_at": ["2025-01-01", "2025-08-01", "2025-02-01", "2025-01-01", "2025-08-20"],
        # c1 changes plan on 2025-08-01 (no churn); c2 ends and never returns (churn);
        # c3 ends on 2025-08-01 and returns 19 days later (within a 30-day grace: no churn).
        "ended_at": ["2025-08-01", None, "2025-08-10", "2025-08-01", None],
        "monthly_fee": [20.0, 10.0, 20.0, 20.0, 20.0],
        "cancel_reason": [None, None, "price", "price", None],
    })
    tables = tables_of(tmp_path, world)
    churn = ChurnConfig(definition="subscription", horizon_days=90, active_lookback_days=365,
                        subscription_grace_days=30)
    assert labelled(tables, dt.date(2025, 7, 1), churn) == {"c1": 0, "c2": 1, "c3": 0}
    strict = churn.model_copy(update={"subscription_grace_days": 10})
    assert labelled(tables, dt.date(2025, 7, 1), strict)["c3"] == 1
    # Not subscribed at the cutoff: not eligible.
    assert labelled(tables, dt.date(2025, 1, 15), churn) == {"c1": 0, "c3": 0}


def test_clv_label_is_net_revenue_in_the_window(tmp_path):
    tables = tables_of(tmp_path)
    spine = pd.DataFrame({"customer_id": ["c1", "c2", "c3"],
                          "cutoff_date": pd.to_datetime(["2025-04-01"] * 3).astype("datetime64[us]")})
    revenue = dict(zip(spine["customer_id"], build_clv_labels(tables, spine, 30), strict=True))
    # c2 buys 120 on 2025-04-02 and returns 20 on 2025-04-20; c1's next purchase is 2025-05-10.
    assert revenue == {"c1": 0.0, "c2": 100.0, "c3": 0.0}
