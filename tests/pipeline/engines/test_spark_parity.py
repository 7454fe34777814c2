"""data.engine: spark computes what DuckDB computes: the same validated tables, violations and
quarantine, the same active spine, every feature of every stage and both labels (for one
cutoff and for a stacked training frame), and `churn features` / `churn train` run on it.

Few tests on a small world, one Spark session for the module: Spark costs seconds per query
where DuckDB costs milliseconds. Marked `spark`: CI runs them, `-m "not spark"` skips them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.model_input import build_training_frame, features_at
from pipeline.config import Config, DataConfig, SparkConfig
from pipeline.demo.world import generate_world
from pipeline.engines.spark import load_spark_tables
from pipeline.errors import DataError
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_config, write_world

pytestmark = pytest.mark.spark

# Two cores, as CI has; few shuffle partitions: the test world is small.
SPARK = SparkConfig(master="local[2]", options={
    "spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",  # a short run: no time for the slow JIT
})
CUTOFF = dt.date(2025, 10, 1)
STACK = [dt.date(2025, 4, 1), dt.date(2025, 7, 1), dt.date(2025, 10, 1)]


def load_spark(folder: Path, quarantine: Path | None = None):
    return load_spark_tables(folder, RUN_AT, quarantine, DataConfig(path=folder, engine="spark", spark=SPARK))


def load_both(folder: Path, quarantine: Path):
    """The folder's tables on DuckDB and on Spark, each quarantining into its own folder."""
    return load_tables(folder, RUN_AT, quarantine / "duckdb"), load_spark(folder, quarantine / "spark")


def assert_same_frames(on_spark: pd.DataFrame, on_duckdb: pd.DataFrame, what: str) -> None:
    """Same columns, dtypes and rows; integers, text and dates exactly, floats within 1e-6
    relative (blanks in the same places)."""
    assert list(on_spark.columns) == list(on_duckdb.columns), what
    assert len(on_spark) == len(on_duckdb), what
    for column in on_duckdb.columns:
        spark, duck = on_spark[column], on_duckdb[column]
        assert spark.dtype == duck.dtype, f"{what}: {column} is {spark.dtype} on Spark, {duck.dtype} on DuckDB"
        if pd.api.types.is_float_dtype(duck):
            np.testing.assert_allclose(spark.to_numpy(float), duck.to_numpy(float), rtol=1e-6, atol=0,
                                       equal_nan=True, err_msg=f"{what}: {column}")
        else:
            pd.testing.assert_series_equal(spark, duck, obj=f"{what}: {column}")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("world") / "data"
    generate_world(folder, n_customers=800, seed=3, fmt="parquet")
    return folder


@pytest.fixture(scope="module")
def engines(world, tmp_path_factory):
    duck, spark = load_both(world, tmp_path_factory.mktemp("quarantine"))
    yield duck, spark
    duck.close()
    spark.close()


def test_the_validated_tables_are_the_same(engines):
    duck, spark = engines
    assert spark.row_counts == duck.row_counts and spark.quarantined == duck.quarantined
    assert spark.fingerprint() == duck.fingerprint()
    assert spark.last_event_at() == duck.last_event_at()
    assert spark.columns("customers") == duck.columns("customers")
    newest = "SELECT max(purchased_at) FROM transactions WHERE amount > $floor"
    assert spark.scalar(newest, {"floor": 10}) == duck.scalar(newest, {"floor": 10})
    for name in sorted(duck.present):
        ordered = f"SELECT * FROM {name} ORDER BY ALL"
        assert_same_frames(spark.query(ordered), duck.query(ordered), name)


def test_stacked_training_frame_matches_with_both_labels(engines):
    """The active spine of every cutoff (the frame's keys), every feature, both labels."""
    duck, spark = engines
    cfg = Config()
    on_duckdb, on_spark = build_training_frame(duck, cfg, STACK), build_training_frame(spark, cfg, STACK)
    assert on_duckdb["cutoff_date"].nunique() == len(STACK) and on_duckdb["is_churned"].nunique() == 2
    assert on_duckdb.shape[1] > 90  # keys, every stage's features, is_churned, future_revenue
    assert_same_frames(on_spark, on_duckdb, "training frame")


def broken_world() -> dict[str, pd.DataFrame]:
    """The tiny world with a break of every kind of rule, several per table."""
    world = tiny_world()

    def edit(table: str, column: str, row: int, value) -> None:
        world[table][column] = world[table][column].astype(object)
        world[table].loc[row, column] = value

    for column, row, value in [("amount", 2, "abc"), ("amount", 6, "3,5"), ("amount", 4, "2e11"),
                               ("amount", 5, "-2e11"), ("purchased_at", 0, "2025-13-45"),
                               ("purchased_at", 3, "2206-01-01"), ("purchased_at", 7, "2025/01/15 08:00"),
                               ("customer_id", 1, None), ("transaction_id", 1, "t1"), ("discount_amount", 0, -5)]:
        edit("transactions", column, row, value)
    edit("surveys", "nps_score", 0, 11)
    edit("surveys", "nps_score", 1, 7.5)  # not a whole number (DuckDB reads it as 8, Spark must too)
    edit("support_tickets", "effort_score", 2, "3.0")  # a whole number, written with decimals: valid
    edit("support_tickets", "satisfaction", 1, "0")
    edit("support_tickets", "resolved_at", 1, "2025-01-01 00:00")
    edit("subscriptions", "ended_at", 0, "2024-01-01")
    edit("customers", "customer_id", 2, "c1")
    edit("customers", "is_loyalty_member", 0, "maybe")
    edit("customers", "signup_at", 1, "2025")  # a year is no timestamp to DuckDB (it is to Spark's own cast)
    world["interactions"] = world["interactions"].drop(columns="channel")
    return world


def violations(load) -> str:
    with pytest.raises(DataError) as error:
        load()
    return str(error.value)


def test_a_broken_world_gives_the_same_violations(tmp_path):
    folder = write_world(tmp_path / "csv", broken_world())
    on_duckdb = violations(lambda: load_tables(folder, RUN_AT, None))
    assert "(17 problem(s))" in on_duckdb
    assert violations(lambda: load_spark(folder)) == on_duckdb
    # typed Parquet: values are checked without their text, and shown as DuckDB writes them
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    clean = load_tables(write_world(tmp_path / "clean", tiny_world()), RUN_AT, None)
    for name in clean.present:
        frame = clean.query(f"SELECT * FROM {name} ORDER BY ALL")
        if name == "transactions":
            frame.loc[1, "amount"], frame.loc[4, "discount_amount"] = 2e11, -0.0001
            frame.loc[6, "transaction_id"] = frame.loc[2, "transaction_id"]
        frame.to_parquet(parquet / f"{name}.parquet", index=False)
    clean.close()
    on_duckdb = violations(lambda: load_tables(parquet, RUN_AT, None))
    assert "amount='200000000000.0'" in on_duckdb and "discount_amount='-0.0001'" in on_duckdb
    assert violations(lambda: load_spark(parquet)) == on_duckdb


def test_soft_rules_set_aside_the_same_rows(tmp_path):
    world = tiny_world()
    extra = pd.DataFrame({"transaction_id": ["t98", "t99"], "customer_id": ["ghost", "c1"],
                          "purchased_at": ["2025-02-01", "2025-02-02"], "amount": [10.0, 0.0]})
    world["transactions"] = pd.concat([world["transactions"], extra], ignore_index=True)
    world["surveys"].loc[0, "customer_id"] = "nobody"
    duck, spark = load_both(write_world(tmp_path / "data", world), tmp_path / "quarantine")
    assert spark.quarantined == duck.quarantined == {"transactions": 2, "interactions": 0, "support_tickets": 0,
                                                     "surveys": 1, "subscriptions": 0}
    assert spark.row_counts == duck.row_counts
    for name in ("transactions", "surveys"):
        assert (tmp_path / "quarantine" / "spark" / f"{name}.csv").read_bytes() == \
            (tmp_path / "quarantine" / "duckdb" / f"{name}.csv").read_bytes()
        ordered = f"SELECT * FROM {name} ORDER BY ALL"
        assert_same_frames(spark.query(ordered), duck.query(ordered), name)
    duck.close()
    spark.close()


@pytest.fixture(scope="module")
def spark_config(world, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    return write_config(folder, data={"path": str(world), "engine": "spark", "spark": SPARK.model_dump()},
                        training={"cutoffs": 4, "backtest_origins": 2})


def test_churn_features_for_one_cutoff_equal_duckdb(world, spark_config, tmp_path):
    """`churn features --as-of` on Spark: the active spine and every feature of every stage."""
    from pipeline.cli import app

    out = tmp_path / "features.parquet"
    done = CliRunner().invoke(app, ["features", "--as-of", str(CUTOFF), "--out", str(out),
                                    "--config", str(spark_config)])
    assert done.exit_code == 0, done.output
    duck = load_tables(world, RUN_AT, None)
    on_duckdb = features_at(duck, Config(), CUTOFF)
    assert len(on_duckdb) > 400  # most of the world is active
    assert_same_frames(pd.read_parquet(out), on_duckdb, f"features as of {CUTOFF}")
    duck.close()


def test_churn_train_runs_on_spark(spark_config):
    from pipeline.cli import app

    done = CliRunner().invoke(app, ["train", "--config", str(spark_config)])
    assert done.exit_code == 0, done.output
    assert "churn v1 and clv v1 promoted to champion" in done.output
