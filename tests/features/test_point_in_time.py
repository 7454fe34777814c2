"""Point-in-time correctness: a feature at cutoff t uses only events strictly before t.

Two proofs: every feature equals an independent plain-pandas computation on the tiny
world (edge cases: a one-time buyer, a refund, an open ticket, no NPS answer, an event
exactly at the cutoff), and changing anything at or after the cutoff changes nothing."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_catalog
from features.frame import build_features
from features.population import build_active_spine
from pipeline.config import ChurnConfig, FeaturesConfig
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_world

CUTOFF = dt.date(2025, 7, 1)
CFG = FeaturesConfig()


def features_of(tmp_path, world, cutoff=CUTOFF) -> pd.DataFrame:
    tables = load_tables(write_world(tmp_path / "data", world), RUN_AT, None)
    spine = build_active_spine(tables, [cutoff], ChurnConfig())
    return build_features(tables, spine, CFG).set_index("customer_id")


def days(cutoff: pd.Timestamp, at: pd.Series) -> pd.Series:
    return (cutoff.normalize() - at.dt.normalize()).dt.days


def reference_rfm(tx: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    tx = tx[tx["purchased_at"] < cutoff].assign(age=lambda f: days(cutoff, f["purchased_at"]))
    rows = {}
    for cid, own in tx.groupby("customer_id"):
        buys = own[own["amount"] > 0].sort_values("purchased_at")
        refunds = own[own["amount"] < 0]
        gaps = (buys["purchased_at"].dt.normalize().diff().dt.days).dropna()
        row = {
            "days_since_last_purchase": buys["age"].min(),
            "days_since_first_purchase": buys["age"].max(),
            "purchases_total": len(buys),
            "revenue_total": own["amount"].sum(),
            "average_order_value": buys["amount"].mean(),
            "mean_days_between_purchases": gaps.mean() if len(gaps) else np.nan,
            "std_days_between_purchases": gaps.std() if len(gaps) > 1 else np.nan,
            "distinct_categories": buys["category"].nunique(),
            "refunds_total": len(refunds),
            "refund_share": -refunds["amount"].sum() / buys["amount"].sum(),
            "discount_revenue_share": buys["discount_amount"].sum()
            / (buys["discount_amount"].sum() + buys["amount"].sum()),
            "purchase_trend": ((buys["age"] < 90).sum() + 1) / (((buys["age"] >= 90) & (buys["age"] < 180)).sum() + 1),
        }
        for w in CFG.windows:
            row[f"purchases_{w}d"] = (buys["age"] < w).sum()
            row[f"revenue_{w}d"] = own.loc[own["age"] < w, "amount"].sum()
        row["overdue_ratio"] = row["days_since_last_purchase"] / row["mean_days_between_purchases"]
        rows[cid] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def reference_tickets(tickets: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    known = tickets[tickets["opened_at"] < cutoff].copy()
    known["resolved"] = known["resolved_at"].notna() & (known["resolved_at"] < cutoff)
    known["resolution_days"] = (known["resolved_at"] - known["opened_at"]).dt.total_seconds() / 86400
    rows = {}
    for cid, own in known.groupby("customer_id"):
        done = own[own["resolved"]].sort_values("resolved_at")
        still_open = own[~own["resolved"]]
        rows[cid] = {
            "tickets_total": len(own),
            "open_tickets": len(still_open),
            "days_oldest_open_ticket": days(cutoff, still_open["opened_at"]).max() if len(still_open) else np.nan,
            "complaints_total": (own["category"] == "complaint").sum(),
            "mean_resolution_days": done["resolution_days"].mean(),
            "max_resolution_days": done["resolution_days"].max(),
            "csat_last": done["satisfaction"].dropna().iloc[-1] if done["satisfaction"].notna().any() else np.nan,
            "effort_mean": done["effort_score"].mean(),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def reference_surveys(surveys: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    known = surveys[surveys["responded_at"] < cutoff].sort_values("responded_at")
    rows = {}
    for cid, own in known.groupby("customer_id"):
        scores = own["nps_score"].to_numpy()
        rows[cid] = {
            "nps_last": scores[-1],
            "nps_change": scores[-1] - scores[-2] if len(scores) > 1 else np.nan,
            "days_since_last_survey": days(cutoff, own["responded_at"]).min(),
            "surveys_total": len(scores),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def typed(world: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = {name: frame.copy() for name, frame in world.items()}
    for name, frame in out.items():
        for col in frame:
            if col.endswith("_at"):
                frame[col] = pd.to_datetime(frame[col])
        if name == "support_tickets":
            frame[["satisfaction", "effort_score"]] = frame[["satisfaction", "effort_score"]].astype(float)
    return out


def assert_matches(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    for column in expected:
        got = actual.loc[expected.index, column].astype(float)
        want = expected[column].astype(float)
        # features are float32: equal to the reference rounded to float32, within one unit
        # in the last place (the reference is float64)
        np.testing.assert_allclose(got, want, rtol=np.finfo(np.float32).eps, equal_nan=True, err_msg=column)


def test_every_stage_matches_a_plain_pandas_reference(tmp_path):
    world = tiny_world()
    frame = features_of(tmp_path, world)
    ref = typed(world)
    cutoff = pd.Timestamp(CUTOFF)
    assert set(frame.index) == {"c1", "c2", "c3"}
    assert_matches(frame, reference_rfm(ref["transactions"], cutoff))
    assert_matches(frame, reference_tickets(ref["support_tickets"], cutoff))
    assert_matches(frame, reference_surveys(ref["surveys"], cutoff))
    # Edge cases spelled out: the purchase and the web visit exactly at the cutoff are excluded.
    assert frame.loc["c1", "purchases_total"] == 3
    assert frame.loc["c1", "web_interactions_365d"] == 1
    assert frame.loc["c2", "open_tickets"] == 1 and frame.loc["c2", "refunds_total"] == 1
    assert np.isnan(frame.loc["c2", "nps_last"])  # never answered: missing, not zero
    assert frame.loc["c3", "nps_class"] == "detractor"
    assert frame.loc["c1", "fee_downgrades"] == 1 and frame.loc["c1", "active_plan"] == "basic"
    assert frame.loc["c1", "is_loyalty_member"] == 1


def at_or_after_cutoff_changes(world: dict[str, pd.DataFrame]) -> list[dict[str, pd.DataFrame]]:
    """Worlds that differ from `world` only in events at or after the cutoff."""
    def variant(table, change):
        changed = {k: v.copy() for k, v in world.items()}
        changed[table] = change(changed[table])
        return changed

    later = pd.DataFrame({"transaction_id": ["late1", "late2"], "customer_id": ["c2", "c3"],
                          "purchased_at": ["2025-07-01 00:00", "2025-08-15"], "amount": [999.0, -50.0],
                          "category": ["new", "new"], "discount_amount": [90.0, 0.0], "sales_channel": ["web", "web"]})
    return [
        variant("transactions", lambda f: pd.concat([f, later], ignore_index=True)),
        variant("transactions", lambda f: f[pd.to_datetime(f["purchased_at"]) < pd.Timestamp(CUTOFF)]),
        variant("transactions", lambda f: f.assign(amount=np.where(
            pd.to_datetime(f["purchased_at"]) >= pd.Timestamp(CUTOFF), 1234.0, f["amount"]))),
        variant("interactions", lambda f: pd.concat([f, pd.DataFrame({
            "customer_id": ["c3"], "occurred_at": ["2025-07-01 00:00"], "channel": ["phone"], "event_type": ["call"]})])),
        variant("support_tickets", lambda f: f.assign(resolved_at=f["resolved_at"].fillna("2025-07-02 10:00"))),
        variant("support_tickets", lambda f: pd.concat([f, pd.DataFrame({
            "ticket_id": ["k9"], "customer_id": ["c1"], "opened_at": ["2025-07-01 00:00"], "resolved_at": [None],
            "category": ["complaint"], "priority": ["high"], "satisfaction": [None], "effort_score": [None]})])),
        variant("surveys", lambda f: pd.concat([f, pd.DataFrame({
            "customer_id": ["c2"], "responded_at": ["2025-07-01 00:00"], "nps_score": [0]})])),
        variant("subscriptions", lambda f: f.assign(ended_at=f["ended_at"].fillna("2025-08-01"))),
    ]


@pytest.mark.parametrize("case", range(8))
def test_events_at_or_after_the_cutoff_change_no_feature(tmp_path, case):
    world = tiny_world()
    before = features_of(tmp_path / "a", world)
    after = features_of(tmp_path / "b", at_or_after_cutoff_changes(world)[case])
    pd.testing.assert_frame_equal(before, after)


def test_every_catalogued_feature_is_built_and_described(tmp_path):
    frame = features_of(tmp_path, tiny_world())
    catalog = feature_catalog(CFG)
    assert [f.name for f in catalog] == [c for c in frame.columns if c != "cutoff_date"]
    assert all(f.description.endswith(".") and len(f.description) > 10 for f in catalog)
    assert len({f.name for f in catalog}) == len(catalog)


def test_a_spine_with_a_repeated_key_stops_instead_of_shifting_features(tmp_path):
    tables = load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    spine = build_active_spine(tables, [CUTOFF], ChurnConfig())
    repeated = pd.concat([spine, spine.head(1)], ignore_index=True)
    with pytest.raises(RuntimeError, match="repeats a"):
        build_features(tables, repeated, CFG)
