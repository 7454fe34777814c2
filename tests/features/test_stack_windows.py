"""The stack plan counts windows by calendar (each bucket knows the last cutoff each window
holds it for): it must equal each cutoff built alone for any set of cutoffs, not only
monthly ones, and with events exactly on the edges of every window."""

from __future__ import annotations

import datetime as dt
import itertools

import pandas as pd

from features.frame import build_features
from features.stage_sql import window_spans
from pipeline.config import FeaturesConfig
from pipeline.tables import load_tables
from tests.conftest import tiny_world, write_world
from tests.features.test_point_in_time import assert_matches, reference_rfm, typed

CFG = FeaturesConfig()
RUN_AT = dt.datetime(2027, 1, 15, 12, 0)  # after the latest cutoff: no event is from the future
EDGE = dt.date(2025, 6, 1)  # the cutoff whose windows the edge events sit on
# a day apart, weeks apart, and more than the longest window apart (2025-06-01 to 2026-09-01)
CUTOFFS = [dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3), dt.date(2025, 4, 15), EDGE,
           dt.date(2026, 9, 1)]


def edge_moments(cutoff: dt.date) -> list[str]:
    """Moments on the edges of each window (and of the trend's two) before `cutoff`: age w-1
    days (in the window) and w days (out of it), the last moment before the cutoff, and the
    cutoff itself (never counts)."""
    midnight = dt.datetime.combine(cutoff, dt.time())
    moments = [midnight, midnight + dt.timedelta(hours=15), midnight - dt.timedelta(minutes=1)]
    for days in window_spans(CFG.windows, CFG.trend_days):
        moments += [midnight - dt.timedelta(days=days - 1), midnight - dt.timedelta(days=days, minutes=-1439)]
    return [moment.strftime("%Y-%m-%d %H:%M") for moment in moments]


def edge_world() -> dict[str, pd.DataFrame]:
    """The tiny world plus purchases, refunds and interactions on the window edges of
    several cutoffs, for customers of its own."""
    world = tiny_world()
    edges = [("c1", EDGE), ("c2", dt.date(2025, 3, 2)), ("c3", dt.date(2026, 9, 1)), ("c3", dt.date(2025, 3, 3))]
    moments = [(customer, at) for customer, cutoff in edges for at in edge_moments(cutoff)]
    amounts = itertools.cycle([12.5, 30.0, -7.25, 41.0])  # a refund now and then
    transactions = pd.DataFrame({
        "transaction_id": [f"edge{i}" for i in range(len(moments))],
        "customer_id": [customer for customer, _ in moments],
        "purchased_at": [at for _, at in moments],
        "amount": [next(amounts) for _ in moments],
        "category": [["books", "toys", "garden"][i % 3] for i in range(len(moments))],
        "discount_amount": [float(i % 4) for i in range(len(moments))],
        "sales_channel": "web",
    })
    channels = itertools.cycle(["email", "web", "app"])
    interactions = pd.DataFrame({
        "customer_id": [customer for customer, _ in moments],
        "occurred_at": [at for _, at in moments],
        "channel": [next(channels) for _ in moments],
        "event_type": "visit",
    })
    world["transactions"] = pd.concat([world["transactions"], transactions], ignore_index=True)
    world["interactions"] = pd.concat([world["interactions"], interactions], ignore_index=True)
    return world


def edge_spine() -> pd.DataFrame:
    """Every customer at every cutoff, except a few: a customer's rows may be any subset."""
    rows = [(customer, cutoff) for customer in ("c1", "c2", "c3") for cutoff in CUTOFFS]
    skipped = {("c2", CUTOFFS[0]), ("c3", CUTOFFS[1]), ("c3", EDGE), ("c1", CUTOFFS[3])}
    spine = pd.DataFrame([row for row in rows if row not in skipped], columns=["customer_id", "cutoff_date"])
    spine["cutoff_date"] = pd.to_datetime(spine["cutoff_date"])
    return spine


def test_a_stack_of_irregular_cutoffs_equals_each_cutoff_built_alone(tmp_path):
    world = edge_world()
    tables = load_tables(write_world(tmp_path / "data", world), RUN_AT, None)
    spine = edge_spine()
    stacked = build_features(tables, spine, CFG)
    alone = pd.concat([build_features(tables, spine[spine["cutoff_date"] == c], CFG)
                       for c in spine["cutoff_date"].unique()])
    alone = alone.sort_values(["customer_id", "cutoff_date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(stacked, alone)

    # and both equal the plain pandas reference, edge by edge
    transactions = typed(world)["transactions"]
    for cutoff, rows in stacked.groupby("cutoff_date"):
        expected = reference_rfm(transactions, pd.Timestamp(cutoff))
        found = rows.set_index("customer_id")
        assert_matches(found, expected.loc[expected.index.intersection(found.index)])
    at_edge = stacked.set_index(["customer_id", "cutoff_date"]).loc[("c1", pd.Timestamp(EDGE))]
    # c1's interactions before EDGE are the edge ones (its tiny-world ones are on or after
    # it): in a window of w days, ages 1 and w-1 count, age w and the cutoff day never
    interactions = {w: sum(at_edge[f"{ch}_interactions_{w}d"] for ch in CFG.channels) for w in CFG.windows}
    assert interactions == {30: 2, 90: 4, 180: 6, 365: 8}
    assert at_edge["days_since_last_interaction"] == 1
