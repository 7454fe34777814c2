"""The demo-world generator: contract shape, determinism, atomicity, and planted churn."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pipeline.demo.world as world_module
from pipeline.contract import TABLES
from pipeline.demo.world import DEFAULT_END_DATE, generate_world

END = pd.Timestamp(DEFAULT_END_DATE) + pd.Timedelta(days=1)  # exclusive
ARROW_KINDS = {"string": pa.types.is_string, "timestamp": pa.types.is_timestamp,
               "number": pa.types.is_floating, "integer": pa.types.is_integer,
               "boolean": pa.types.is_boolean}
# Monthly, once the business has customers of every tenure, to the last full quarter.
CUTOFFS = pd.date_range("2023-07-01", "2025-09-01", freq="MS")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# --- shape and determinism -----------------------------------------------------------------


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    counts = generate_world(tmp_path / "a", 300, seed=3)
    assert generate_world(tmp_path / "b", 300, seed=3) == counts
    generate_world(tmp_path / "c", 300, seed=4)
    a, b, c = (files_of(tmp_path / x) for x in "abc")
    assert a == b
    assert set(a) == set(c)
    assert all(a[f] != c[f] for f in a if f.endswith(".parquet"))


def test_every_table_follows_the_contract(world):
    for name, table in TABLES.items():
        data = pq.read_table(world / f"{name}.parquet")
        extra = ["email", "name"] if name == "customers" else []
        assert data.column_names == table.column_names + extra
        for column in table.columns:
            values = data[column.name]
            assert ARROW_KINDS[column.kind](values.type), (name, column.name, values.type)
            if column.required:
                assert values.null_count == 0, (name, column.name)
            if column.unique:
                assert len(pa.compute.unique(values)) == len(values), (name, column.name)
            frame = values.to_pandas()
            if column.min_value is not None:
                assert frame.min() >= column.min_value, (name, column.name)
            if column.max_value is not None:
                assert frame.max() <= column.max_value, (name, column.name)
            if column.kind == "timestamp":
                assert frame.max() < END, (name, column.name)
        for rule in table.order_rules:
            frame = data.select([rule.earlier, rule.later]).to_pandas()
            assert not (frame[rule.later] < frame[rule.earlier]).any(), (name, rule.name)


def test_events_fit_their_customers(con):
    orphans = sum(con.execute(f"""
        SELECT count(*) FROM {name} e ANTI JOIN customers c USING (customer_id)""").fetchall()[0][0]
        for name in TABLES if name != "customers")
    assert orphans == 0
    before_signup = con.execute("""
        SELECT count(*) FROM transactions t JOIN customers c USING (customer_id)
        WHERE t.purchased_at < c.signup_at""").fetchall()[0][0]
    assert before_signup == 0
    ids = con.execute("SELECT DISTINCT length(customer_id) FROM customers").fetchall()
    assert ids == [(8,)]


def test_transactions_look_like_a_shop(con):
    zero, refunds, discounted, n, customers = con.execute("""
        SELECT count(*) FILTER (WHERE amount = 0), avg((amount < 0)::INT),
               avg((discount_amount > 0)::INT), count(*), count(DISTINCT customer_id)
        FROM transactions""").fetchall()[0]
    assert zero == 0
    assert 0.015 < refunds < 0.045
    assert 0.05 < discounted < 0.4
    assert 35 < n / 2_000 < 70  # about 50 transactions per customer over the world's life
    peak, low = con.execute("""
        SELECT avg(n) FILTER (WHERE m IN (11, 12)), avg(n) FILTER (WHERE m IN (1, 2, 7, 8))
        FROM (SELECT month(purchased_at) AS m, count(*) AS n FROM transactions
              WHERE amount > 0 AND purchased_at >= DATE '2024-01-01'
              AND purchased_at < DATE '2025-01-01' GROUP BY m)""").fetchall()[0]
    assert peak > 1.2 * low  # November and December are the busy months
    assert customers > 1_500


def test_tickets_and_subscriptions_are_plausible(con):
    open_tickets, slow_csat, fast_csat = con.execute("""
        SELECT count(*) FILTER (WHERE resolved_at IS NULL),
               avg(satisfaction) FILTER (WHERE resolved_at - opened_at > INTERVAL 7 DAY),
               avg(satisfaction) FILTER (WHERE resolved_at - opened_at < INTERVAL 1 DAY)
        FROM support_tickets""").fetchall()[0]
    assert open_tickets > 0
    assert slow_csat < fast_csat - 0.5
    answered_open = con.execute("""SELECT count(*) FROM support_tickets
        WHERE resolved_at IS NULL AND (satisfaction IS NOT NULL OR effort_score IS NOT NULL)
        """).fetchall()[0][0]
    assert answered_open == 0
    subscribers, plan_changes, reasons = con.execute("""
        SELECT count(DISTINCT customer_id), count(*) - count(DISTINCT customer_id),
               count(cancel_reason) FROM subscriptions""").fetchall()[0]
    assert 0.15 < subscribers / 2_000 < 0.35
    assert plan_changes > 0 and reasons > 0
    # A plan change ends the old row the moment the new one starts, without a reason.
    unmatched = con.execute("""
        SELECT count(*) FROM subscriptions a WHERE a.ended_at IS NOT NULL
        AND a.cancel_reason IS NULL AND NOT EXISTS (SELECT 1 FROM subscriptions b
            WHERE b.customer_id = a.customer_id AND b.started_at = a.ended_at)""").fetchall()[0][0]
    assert unmatched == 0


def test_csv_world_matches_the_parquet_world_and_keeps_tricky_names(tmp_path):
    generate_world(tmp_path / "csv", 300, seed=5, fmt="csv")
    generate_world(tmp_path / "parquet", 300, seed=5)
    for name in TABLES:
        from_csv = pd.read_csv(tmp_path / "csv" / f"{name}.csv", keep_default_na=False,
                               na_values=[""])
        from_parquet = pd.read_parquet(tmp_path / "parquet" / f"{name}.parquet")
        assert list(from_csv.columns) == list(from_parquet.columns)
        assert len(from_csv) == len(from_parquet), name
        for column in TABLES[name].timestamp_columns:
            from_csv[column] = pd.to_datetime(from_csv[column]).astype(from_parquet[column].dtype)
        pd.testing.assert_frame_equal(from_csv, from_parquet, check_dtype=False, obj=name)
    names = pd.read_csv(tmp_path / "csv" / "customers.csv")["name"]
    assert names.str.contains('"').any()
    assert names.str.contains(", ").any()
    assert names.str.contains("ü|ö|ß|é").any()


def test_a_second_run_replaces_the_world_and_a_crash_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "data"
    generate_world(out, 300, seed=1)
    (out / "stray.txt").write_text("left over")
    counts = generate_world(out, 200, seed=2)
    assert not (out / "stray.txt").exists()
    assert pq.read_metadata(out / "customers.parquet").num_rows == counts["customers"] == 200

    def crash(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(world_module._World, "_subscriptions", crash)
    with pytest.raises(RuntimeError):
        generate_world(out, 300, seed=3)
    assert pq.read_metadata(out / "customers.parquet").num_rows == 200
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no half-built sibling left


def test_logs_each_stage(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pipeline.demo.world"):
        generate_world(tmp_path / "data", 300, seed=1)
    stages = " ".join(caplog.messages)
    for stage in ("customers", "simulation", "subscriptions", "truth"):
        assert f"stage {stage}" in stages


# --- planted churn -----------------------------------------------------------------------


def test_inactivity_after_a_cutoff_is_in_a_sane_range(con):
    for cutoff in (date(2024, 7, 1), date(2025, 7, 1)):
        share = con.execute("""
            WITH active AS (SELECT DISTINCT customer_id FROM transactions WHERE amount > 0
                 AND purchased_at < $c AND purchased_at >= $c - INTERVAL 365 DAY),
            buying AS (SELECT DISTINCT customer_id FROM transactions WHERE amount > 0
                 AND purchased_at >= $c AND purchased_at < $c + INTERVAL 90 DAY)
            SELECT avg((b.customer_id IS NULL)::INT) FROM active a LEFT JOIN buying b
            USING (customer_id)""", {"c": cutoff}).fetchall()[0][0]
        assert 0.2 <= share <= 0.5, (cutoff, share)


def test_churned_customers_stop_buying_and_a_few_come_back(con):
    after_churn = con.execute("""
        SELECT count(*) FROM transactions t JOIN truth c USING (customer_id)
        WHERE t.amount > 0 AND t.purchased_at > c.churned_at
        AND (c.reactivated_at IS NULL OR t.purchased_at < c.reactivated_at)""").fetchall()[0][0]
    assert after_churn == 0
    churned, came_back = con.execute("""SELECT avg((churned_at IS NOT NULL)::INT),
        avg((reactivated_at IS NOT NULL)::INT) FROM truth""").fetchall()[0]
    assert 0.3 < churned < 0.7
    assert 0.0 < came_back < 0.1


@pytest.fixture(scope="module")
def panel(con) -> pd.DataFrame:
    """One row per customer alive (in the truth) at each cutoff: what a retention team could
    see then, and whether the customer truly churned in the next 90 days."""
    con.register("cutoffs", pd.DataFrame({"c": CUTOFFS}))
    return con.execute("""
        SELECT t.customer_id, k.c,
          coalesce(t.churned_at >= k.c AND t.churned_at < k.c + INTERVAL 90 DAY, FALSE)
          OR coalesce(t.churned_again_at >= k.c AND t.churned_again_at < k.c + INTERVAL 90 DAY,
                      FALSE) AS churned,
          u.is_loyalty_member AS loyal,
          t.signup_at >= k.c - INTERVAL 91 DAY AS new,
          (SELECT arg_max(nps_score, responded_at) FROM surveys s
           WHERE s.customer_id = t.customer_id AND s.responded_at < k.c) AS last_nps,
          EXISTS (SELECT 1 FROM support_tickets s WHERE s.customer_id = t.customer_id
                  AND s.category = 'complaint' AND s.opened_at < k.c
                  AND s.opened_at >= k.c - INTERVAL 180 DAY) AS complained,
          EXISTS (SELECT 1 FROM support_tickets s WHERE s.customer_id = t.customer_id
                  AND s.opened_at < k.c AND s.opened_at >= k.c - INTERVAL 90 DAY
                  AND (s.resolved_at IS NULL OR s.resolved_at >= k.c
                       OR s.resolved_at - s.opened_at > INTERVAL 7 DAY)) AS slow_ticket,
          (SELECT avg((discount_amount > 0)::INT) FROM transactions x
           WHERE x.customer_id = t.customer_id AND x.amount > 0 AND x.purchased_at < k.c)
           AS discount_share,
          NOT EXISTS (SELECT 1 FROM transactions x WHERE x.customer_id = t.customer_id
                      AND x.purchased_at < k.c AND x.purchased_at >= k.c - INTERVAL 42 DAY)
          AND NOT EXISTS (SELECT 1 FROM interactions x WHERE x.customer_id = t.customer_id
                      AND x.occurred_at < k.c AND x.occurred_at >= k.c - INTERVAL 42 DAY)
           AS silent,
          (SELECT count(*) FROM transactions x WHERE x.customer_id = t.customer_id
           AND x.amount > 0 AND x.purchased_at < k.c AND x.purchased_at >= k.c - INTERVAL 90 DAY)
           AS recent_purchases,
          (SELECT count(*) FROM transactions x WHERE x.customer_id = t.customer_id
           AND x.amount > 0 AND x.purchased_at < k.c - INTERVAL 90 DAY
           AND x.purchased_at >= k.c - INTERVAL 180 DAY) AS earlier_purchases
        FROM truth t JOIN customers u USING (customer_id) CROSS JOIN cutoffs k
        WHERE t.signup_at < k.c AND (t.churned_at IS NULL OR t.churned_at >= k.c
              OR (t.reactivated_at < k.c
                  AND (t.churned_again_at IS NULL OR t.churned_again_at >= k.c)))
        """).df()


DRIVERS = {  # name: (customers showing the warning sign, the customers to compare with)
    "not a loyalty member": ("~loyal", "loyal"),
    "new customer": ("new", "~new"),
    "NPS detractor": ("last_nps <= 6", "last_nps >= 7"),
    "complained": ("complained", "~complained"),
    "slow or open ticket": ("slow_ticket", "~slow_ticket"),
    "lives on discounts": ("discount_share > 0.4", "discount_share <= 0.4"),
    "silent on every channel": ("silent", "~silent"),
    "falling purchase frequency": (
        "earlier_purchases >= 3 and recent_purchases <= earlier_purchases / 2",
        "~(earlier_purchases >= 3 and recent_purchases <= earlier_purchases / 2)"),
}


@pytest.mark.parametrize("driver", DRIVERS)
def test_each_driver_raises_churn_in_the_truth(panel, driver):
    warned, others = (panel.query(q)["churned"] for q in DRIVERS[driver])
    assert len(warned) >= 100 and len(others) >= 100
    assert warned.mean() > 1.15 * others.mean(), (warned.mean(), others.mean())
