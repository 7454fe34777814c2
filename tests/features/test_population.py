"""Who is active at a cutoff and who churned after it, for both churn definitions."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.population import build_active_spine, build_churn_labels, build_clv_labels
from pipeline.config import ChurnConfig
from pipeline.demo.world import generate_world
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


def test_spine_and_labels_at_close_cutoffs_equal_a_plain_pandas_count(tmp_path):
    """Weekly cutoffs with a 90-day horizon: each purchase counts for many cutoffs at once,
    which the engine finds as runs of cutoffs; here every (customer, cutoff) is counted directly."""
    generate_world(tmp_path / "world", 300, seed=3, end_date=dt.date(2025, 12, 31))
    tables = load_tables(tmp_path / "world", RUN_AT, None)
    churn = ChurnConfig(horizon_days=90, active_lookback_days=120)
    cutoffs = [dt.date(2025, 3, 3) + dt.timedelta(days=7 * k) for k in range(12)]
    spine = build_active_spine(tables, cutoffs, churn)
    spine["is_churned"] = build_churn_labels(tables, spine, churn).to_numpy()
    spine["future_revenue"] = build_clv_labels(tables, spine, 60).to_numpy()

    tx = pd.read_parquet(tmp_path / "world" / "transactions.parquet")
    tx = tx[tx["amount"] != 0]  # zero amounts are quarantined
    expected = []
    for cutoff in pd.to_datetime(cutoffs):
        days = (tx["purchased_at"].dt.floor("D") - cutoff).dt.days  # calendar days after the cutoff
        bought = tx["amount"] > 0
        active = tx.loc[bought & (days < 0) & (days >= -120), "customer_id"].unique()
        retained = set(tx.loc[bought & (days >= 0) & (days < 90), "customer_id"])
        future = tx[(days >= 0) & (days < 60)].groupby("customer_id")["amount"].sum()
        expected += [(c, cutoff, int(c not in retained), future.get(c, 0.0)) for c in active]
    expected = pd.DataFrame(expected, columns=["customer_id", "cutoff_date", "is_churned", "future_revenue"])
    keys = ["cutoff_date", "customer_id"]
    found = spine.sort_values(keys).reset_index(drop=True)
    expected = expected.sort_values(keys).reset_index(drop=True)
    assert len(found) > 1000 and 0 < found["is_churned"].mean() < 1
    assert found["customer_id"].tolist() == expected["customer_id"].tolist()
    assert (found["cutoff_date"] == expected["cutoff_date"]).all()
    assert found["is_churned"].tolist() == expected["is_churned"].tolist()
    np.testing.assert_allclose(found["future_revenue"], expected["future_revenue"], rtol=1e-9, atol=1e-9)


def test_labels_refuse_a_spine_with_repeated_or_non_midnight_keys(tmp_path):
    tables = tables_of(tmp_path)
    churn = ChurnConfig(horizon_days=90, active_lookback_days=365)
    twice = pd.DataFrame({"customer_id": ["c1", "c1"],
                          "cutoff_date": pd.to_datetime(["2025-04-01"] * 2).astype("datetime64[us]")})
    with pytest.raises(ValueError, match="repeats"):
        build_churn_labels(tables, twice, churn)
    noon = pd.DataFrame({"customer_id": ["c1"], "cutoff_date": pd.to_datetime(["2025-04-01 12:00"])})
    with pytest.raises(ValueError, match="midnight"):
        build_clv_labels(tables, noon, 30)
