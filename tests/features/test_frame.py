"""The model-ready frame is the same however many batches it is built in."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features import interactions, rfm
from features.feature import KEYS
from features.frame import build_features, customer_batches
from features.population import build_active_spine
from features.stage_sql import run_stage_query
from pipeline.config import ChurnConfig, FeaturesConfig
from pipeline.demo.world import generate_world
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_world

CUTOFFS = [dt.date(2025, 5, 1), dt.date(2025, 6, 1), dt.date(2025, 7, 1)]


def test_batches_cover_every_row_once_and_never_split_a_customer():
    frame = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "c", "c", "d"]})
    batches = list(customer_batches(frame, batch_rows=2))
    assert batches == [(0, 3), (3, 4), (4, 6), (6, 7)]  # "a" has 3 rows: a batch of its own
    assert list(customer_batches(frame, batch_rows=100)) == [(0, 7)]


def test_a_spine_in_key_order_shares_its_keys_and_any_other_order_is_sorted(tmp_path):
    """The active spine comes ordered by customer and cutoff, so the frame reuses its key
    columns (a 12-cutoff stack of 1M customers saves a copy of 6M keys); a spine in any
    other order gives the same frame, sorted."""
    import numpy as np

    tables = load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    spine = build_active_spine(tables, CUTOFFS, ChurnConfig())
    assert pd.MultiIndex.from_frame(spine[KEYS]).is_monotonic_increasing
    frame = build_features(tables, spine, FeaturesConfig())
    assert np.shares_memory(frame["cutoff_date"].to_numpy(), spine["cutoff_date"].to_numpy())
    shuffled = spine.sample(frac=1.0, random_state=3).reset_index(drop=True)
    assert not pd.MultiIndex.from_frame(shuffled[KEYS]).is_monotonic_increasing
    pd.testing.assert_frame_equal(build_features(tables, shuffled, FeaturesConfig()), frame)


def test_features_built_in_small_batches_equal_one_batch(tmp_path):
    tables = load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    spine = build_active_spine(tables, CUTOFFS, ChurnConfig())
    assert spine["customer_id"].duplicated().any()  # several cutoffs per customer
    whole = build_features(tables, spine, FeaturesConfig())
    # model_copy skips validation: batches far below the configurable minimum
    batched = build_features(tables, spine, FeaturesConfig().model_copy(update={"batch_rows": 2}))
    assert len(list(customer_batches(whole, 2))) > 2
    pd.testing.assert_frame_equal(whole, batched)
    assert set(whole.dtypes.astype(str)) <= {"str", "float32", "datetime64[us]", "datetime64[ns]"}


def world_tables(tmp_path, kind: str):
    if kind == "hand-made":
        return load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    generate_world(tmp_path / "data", 200, seed=11, end_date=dt.date(2025, 12, 31))
    return load_tables(tmp_path / "data", RUN_AT, None)


@pytest.mark.parametrize("kind", ["hand-made", "generated"])
def test_a_stack_of_cutoffs_equals_each_cutoff_built_alone(tmp_path, kind):
    """A stack is built by another plan than a single cutoff (per-cutoff buckets and running
    totals instead of aggregates per customer): both must give the same features."""
    tables = world_tables(tmp_path, kind)
    cfg = FeaturesConfig()
    stacked = build_features(tables, build_active_spine(tables, CUTOFFS, ChurnConfig()), cfg)
    alone = pd.concat([build_features(tables, build_active_spine(tables, [c], ChurnConfig()), cfg) for c in CUTOFFS])
    alone = alone.sort_values(["customer_id", "cutoff_date"]).reset_index(drop=True)
    assert len(alone) == len(stacked) and stacked["cutoff_date"].nunique() == len(CUTOFFS)
    pd.testing.assert_frame_equal(stacked, alone)


def test_an_empty_spine_gives_an_empty_frame_with_every_feature(tmp_path):
    tables = load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    spine = build_active_spine(tables, CUTOFFS, ChurnConfig()).head(0)
    frame = build_features(tables, spine, FeaturesConfig())
    assert len(frame) == 0 and len(frame.columns) > 50


@pytest.mark.parametrize("stage", [rfm, interactions])
def test_the_one_cutoff_plan_never_gives_a_row_the_features_of_a_later_cutoff(tmp_path, stage):
    """The one-cutoff query computes as of the spine's latest cutoff; handed a stack by
    mistake, it leaves the earlier rows empty instead of leaking later events into them."""
    tables = load_tables(write_world(tmp_path / "data", tiny_world()), RUN_AT, None)
    cfg = FeaturesConfig()
    spine = build_active_spine(tables, CUTOFFS, ChurnConfig()).sort_values(KEYS).reset_index(drop=True)
    names = [f.name for f in stage.catalog(cfg)]
    found = run_stage_query(tables, spine, *stage.stage_query(cfg), stage.catalog(cfg), [])
    latest = found["cutoff_date"] == found["cutoff_date"].max()
    assert found.loc[~latest, names].isna().all().all()
    assert found.loc[latest, names].notna().any().any()
