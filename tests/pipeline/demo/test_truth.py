"""The demo world's truth folder: its snapshots, the oracle's true churn probabilities, and
how production code recognises a demo world (the world and con fixtures are in conftest.py)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from pipeline.demo import is_demo_world
from pipeline.demo.truth import oracle_churn_probability, oracle_for

# --- the oracle ----------------------------------------------------------------------------


def actual_inactivity(con, cutoff: date, horizon_days: int = 90) -> pd.DataFrame:
    """1 when a customer who signed up before the cutoff makes no purchase in
    [cutoff, cutoff + horizon) (the pipeline's label windows)."""
    return con.execute("""
        SELECT c.customer_id, (count(t.customer_id) = 0)::INT AS inactive
        FROM customers c LEFT JOIN transactions t ON t.customer_id = c.customer_id
          AND t.amount > 0 AND t.purchased_at >= $c
          AND t.purchased_at < $c + to_days(CAST($h AS INTEGER))
        WHERE c.signup_at < $c GROUP BY c.customer_id""", {"c": cutoff, "h": horizon_days}).df()


def alive_at(con, day: date) -> list[str]:
    return [row[0] for row in con.execute("""SELECT customer_id FROM truth
        WHERE signup_at < $d AND (churned_at IS NULL OR churned_at >= $d
              OR (reactivated_at < $d AND (churned_again_at IS NULL OR churned_again_at >= $d)))
        """, {"d": day}).fetchall()]


@pytest.mark.parametrize("as_of", [date(2024, 7, 1), date(2025, 3, 1), date(2025, 6, 17)])
def test_oracle_ranks_actual_inactivity(world, con, as_of):
    oracle = oracle_churn_probability(world / "truth", as_of, 90)
    assert list(oracle.columns) == ["customer_id", "oracle_churn_probability"]
    assert oracle["oracle_churn_probability"].between(0, 1).all()
    labels = actual_inactivity(con, as_of)
    assert set(oracle["customer_id"]) == set(labels["customer_id"])
    both = labels.merge(oracle, on="customer_id")
    assert roc_auc_score(both["inactive"], both["oracle_churn_probability"]) > 0.85
    # Calibrated, not just well ranked.
    assert abs(both["oracle_churn_probability"].mean() - both["inactive"].mean()) < 0.04
    # And not only telling the churned from the rest: it ranks those still alive, too.
    alive = both[both["customer_id"].isin(alive_at(con, as_of))]
    assert roc_auc_score(alive["inactive"], alive["oracle_churn_probability"]) > 0.8


def test_a_longer_horizon_leaves_less_room_for_no_purchase(world):
    short = oracle_churn_probability(world / "truth", date(2025, 3, 1), 30)
    long = oracle_churn_probability(world / "truth", date(2025, 3, 1), 180)
    assert (long["customer_id"] == short["customer_id"]).all()
    assert (long["oracle_churn_probability"].to_numpy()
            <= short["oracle_churn_probability"].to_numpy() + 1e-9).all()
    assert np.mean(long["oracle_churn_probability"]) < np.mean(short["oracle_churn_probability"])


def test_snapshots_hold_every_customer_alive_on_each_month_first(world, con):
    snapshots = pq.read_table(world / "truth" / "snapshots.parquet")
    assert snapshots.schema.field("customer_index").type == pa.int32()
    assert snapshots.schema.field("weekly_hazard").type == pa.float32()
    on = date(2025, 3, 1)
    alive = len(alive_at(con, on))
    taken = snapshots.filter(pa.compute.equal(snapshots["snapshot_date"], pa.scalar(on)))
    # Taken at the start of the week holding the first: a few newcomers of that week join.
    assert alive <= taken.num_rows <= alive * 1.05


def test_oracle_for_follows_the_given_ids_and_gives_nan_where_the_truth_has_none(world):
    cutoff = date(2025, 3, 1)
    oracle = oracle_churn_probability(world / "truth", cutoff, 90).set_index("customer_id")
    known = oracle.index[[5, 0, 17, 3]]  # not in the oracle's order
    signups = pd.read_parquet(world / "customers.parquet", columns=["customer_id", "signup_at"])
    newcomer = signups.loc[signups["signup_at"] >= pd.Timestamp(cutoff), "customer_id"].iloc[0]
    ids = pd.Series([known[0], "C9999999", known[1], newcomer, known[2], known[3]])

    got = oracle_for(world, ids, cutoff, 90)

    assert got.dtype == np.float64 and got.shape == (6,)
    expected = oracle.loc[list(known), "oracle_churn_probability"].to_numpy()
    np.testing.assert_array_equal(got[[0, 2, 4, 5]], expected)
    assert np.isnan(got[1]) and np.isnan(got[3])  # an unknown id; a customer after the cutoff


def test_only_a_folder_with_a_truth_folder_is_a_demo_world(world, tmp_path):
    assert is_demo_world(world)
    assert not is_demo_world(tmp_path)  # real data: the tables only
    (tmp_path / "truth").write_text("a file, not the generator's folder")
    assert not is_demo_world(tmp_path)
    assert not is_demo_world(tmp_path / "missing")
