"""The demo-world generator: contract shape, determinism, its folder (marked, guarded, swapped in
whole), and planted churn."""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import pipeline.demo.world as world_module
from pipeline.cli import app
from pipeline.contract import TABLES
from pipeline.demo import DEMO_MARKER, is_demo_world
from pipeline.demo.world import DEFAULT_END_DATE, generate_world
from pipeline.errors import OutputError
from tests.conftest import tiny_world, write_config, write_world

ROOT = Path(__file__).resolve().parents[3]

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


def test_an_earlier_world_is_replaced_only_when_asked_and_a_crash_keeps_it(tmp_path, monkeypatch):
    out = tmp_path / "data"
    generate_world(out, 300, seed=1)
    first = files_of(out)
    with pytest.raises(OutputError, match="holds an earlier demo world .seed 1, 300 customers.*--force"):
        generate_world(out, 200, seed=2)
    assert files_of(out) == first
    counts = generate_world(out, 200, seed=2, replace=True)
    assert pq.read_metadata(out / "customers.parquet").num_rows == counts["customers"] == 200
    assert json.loads((out / DEMO_MARKER).read_text())["seed"] == 2

    def crash(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(world_module._World, "_subscriptions", crash)
    with pytest.raises(RuntimeError):
        generate_world(out, 300, seed=3, replace=True)
    assert pq.read_metadata(out / "customers.parquet").num_rows == 200
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # no half-built sibling left


def test_a_generator_killed_midway_leaves_the_earlier_world_whole(tmp_path):
    """A real SIGKILL while the new world is half written (after the customers, during the
    subscriptions): the folder still holds the earlier world, byte for byte, and the next
    run removes the dead run's staging folder."""
    out = tmp_path / "data"
    generate_world(out, 300, seed=1)
    before = files_of(out)
    child = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import os, signal, sys
        import pipeline.demo.world as world
        world._World._subscriptions = lambda self: os.kill(os.getpid(), signal.SIGKILL)
        world.generate_world(sys.argv[1], 300, seed=2, replace=True)
        """), str(out)], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert files_of(out) == before
    assert len(list(tmp_path.glob(".data.staging-*"))) == 1  # the dead run's half world, beside
    generate_world(out, 200, seed=2, replace=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
    assert json.loads((out / DEMO_MARKER).read_text())["customers"] == 200


def test_a_folder_of_the_users_own_tables_is_refused_and_left_byte_identical(tmp_path):
    """The bug this guards against: `churn demo` with data.path at the user's own export
    replaced the folder, and the user's customers.csv and transactions.csv were gone."""
    own = write_world(tmp_path / "export", tiny_world())
    (own / "truth").mkdir()  # a folder of the user's own called truth/ proves nothing
    (own / "truth" / "notes.txt").write_text("ours")
    before = files_of(own)
    config = write_config(tmp_path, data={"path": str(own)})
    for args in (["generate", "--out", str(own), "--customers", "50"],
                 ["generate", "--out", str(own), "--customers", "50", "--force"],
                 ["demo", "--config", str(config), "--customers", "50"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == OutputError.exit_code == 7, (args, result.output)
        assert "files the generator did not write (customers.csv," in result.output
        assert "Traceback" not in result.output
        assert files_of(own) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "export"]  # no staging left


def test_churn_generate_replaces_an_earlier_world_only_with_force(tmp_path):
    out = str(tmp_path / "data")
    assert CliRunner().invoke(app, ["generate", "--out", out, "--customers", "50"]).exit_code == 0
    first = files_of(tmp_path / "data")
    again = CliRunner().invoke(app, ["generate", "--out", out, "--customers", "60", "--seed", "5"])
    assert again.exit_code == 7 and "earlier demo world" in again.output and "--force" in again.output
    assert files_of(tmp_path / "data") == first
    forced = CliRunner().invoke(app, ["generate", "--out", out, "--customers", "60", "--seed", "5", "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads((tmp_path / "data" / DEMO_MARKER).read_text())["customers"] == 60


def test_churn_demo_replaces_its_own_earlier_world(tmp_path):
    generate_world(tmp_path / "data", 100, seed=1)
    result = CliRunner().invoke(app, ["demo", "--config", str(write_config(tmp_path)), "--customers", "200"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "data" / DEMO_MARKER).read_text())["customers"] == 200
    assert not list(tmp_path.glob(".data.*"))


def test_a_world_with_a_file_added_or_replaced_is_refused_even_with_replace(tmp_path):
    out = tmp_path / "data"
    generate_world(out, 300, seed=1)
    (out / "my_notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"did not write \(my_notes.txt\)"):
        generate_world(out, 300, seed=2, replace=True)
    (out / "my_notes.txt").unlink()
    (out / "customers.parquet").write_bytes(b"the user's own export under the generator's name")
    with pytest.raises(OutputError, match=r"did not write \(customers.parquet\)"):
        generate_world(out, 300, seed=2, replace=True)
    assert (out / "customers.parquet").read_bytes().startswith(b"the user's own export")


def test_an_empty_or_missing_folder_is_written(tmp_path):
    (tmp_path / "empty").mkdir()
    generate_world(tmp_path / "empty", 100, seed=1)
    generate_world(tmp_path / "missing" / "data", 100, seed=1)
    assert is_demo_world(tmp_path / "empty") and is_demo_world(tmp_path / "missing" / "data")
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "cli"), "--customers", "50"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / DEMO_MARKER).read_text())["customers"] == 50


def test_a_read_only_place_for_the_world_says_so(tmp_path, monkeypatch):
    """A read-only mount cannot be produced here (the tests run as root and cannot mount), so
    creating a folder there fails with EROFS at os.mkdir, as the kernel would refuse it."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).is_relative_to(tmp_path / "ro"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(os, "mkdir", mkdir)
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "ro" / "data"), "--customers", "50"])
    assert result.exit_code == 7, result.output
    message = result.output.strip().splitlines()[-1]
    assert f"Could not write the demo world to {tmp_path / 'ro' / 'data'}: the file system is read-only" in message
    assert "EROFS" in message and "--out" in message and "Traceback" not in result.output


def test_only_the_marker_makes_a_demo_world_not_a_truth_folder(tmp_path):
    generate_world(tmp_path / "world", 100, seed=1)
    facts = json.loads((tmp_path / "world" / DEMO_MARKER).read_text())
    assert is_demo_world(tmp_path / "world")
    assert {k: facts[k] for k in ("generator", "seed", "customers", "format")} == {
        "generator": "churn-pipeline demo world", "seed": 1, "customers": 100, "format": "parquet"}
    assert "truth/customers.parquet" in facts["files"] and "customers.parquet" in facts["files"]
    own = write_world(tmp_path / "export", tiny_world())
    (own / "truth").mkdir()
    assert not is_demo_world(own)  # the user's own truth/: training must not look for an oracle
    (own / DEMO_MARKER).write_text('{"generator": "someone else", "files": {}}')
    assert not is_demo_world(own)
    with pytest.raises(OutputError, match=r"did not write \(.churn-demo-world, customers.csv"):
        generate_world(own, 100, seed=1, replace=True)
    (tmp_path / "world" / DEMO_MARKER).unlink()
    assert not is_demo_world(tmp_path / "world")


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
