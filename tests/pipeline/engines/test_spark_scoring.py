"""Scoring on Spark gives the list DuckDB gives: with `data.engine: spark`, the champions
applied by MLflow's Spark UDFs and every customer explained on the workers, in several
partitions; compared with DuckDB scoring of the same date of the demo run (and its list). And
the list by date that Spark writes beside it.

The features come from the DuckDB-validated tables: that the Spark engine builds the same
features is tested with it (tests/features/test_sql_portability.py), and opening the demo
world on Spark would add about a minute here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import score, tracking
from pipeline.at_risk.listing import AT_RISK_COLUMNS
from pipeline.at_risk.scores import score_customers
from pipeline.config import SparkConfig, load_config
from pipeline.engines import spark_scoring
from pipeline.engines.session import spark_session
from pipeline.files import file_sha256
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, write_config

pytestmark = pytest.mark.spark

AS_OF = dt.date(2026, 1, 1)
BATCH = {"spark.sql.execution.arrow.maxRecordsPerBatch": "500"}  # the demo's 2,138 customers in five batches
SAME_FILES = ("at_risk.csv", "at_risk.parquet", "at_risk.xlsx", "summary.html")
BY_DATE = Path("at_risk_by_date") / f"as_of_date={AS_OF}"


@pytest.fixture(scope="module")
def both_engines(demo_run: Path, tmp_path_factory) -> Iterator[dict]:
    """The demo run's customers scored on DuckDB (in memory) and by the scoring run with
    data.engine: spark (its scored customers caught on their way to the list), explained
    in batches of 500 customers."""
    folder = tmp_path_factory.mktemp("spark_scoring")
    config = write_config(folder, data={"path": str(demo_run / "data"), "engine": "spark",
                                        "spark": {"options": BATCH}},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(folder / "out")})
    cfg = load_config(config)
    churn, clv = tracking.load_champions(cfg.tracking)
    tables = load_tables(cfg.data.path, RUN_AT, None)
    on_duckdb = score_customers(tables, cfg, AS_OF, churn.fitted, clv.fitted)
    caught = {}

    def catching(*args):
        caught["on_spark"] = score_on_engine(*args)
        return caught["on_spark"]

    score_on_engine = score.score_on_engine
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(score, "score_on_engine", catching)
        score.run_scoring(tables, cfg, AS_OF)
    yield {"duckdb": on_duckdb, "spark": caught["on_spark"], "listing": folder / "out" / AS_OF.isoformat(),
           "duckdb_listing": demo_run / "at_risk" / AS_OF.isoformat()}
    for key in BATCH:  # the process's session serves other tests
        spark_session(cfg.data.spark).conf.unset(key)


def test_spark_scores_and_explains_every_customer_as_duckdb_does(both_engines):
    (duckdb, duckdb_drift), (spark, spark_drift) = both_engines["duckdb"], both_engines["spark"]
    assert spark["customer_id"].tolist() == duckdb["customer_id"].tolist()
    for column in ("churn_probability", "predicted_clv", "value_at_risk"):
        np.testing.assert_allclose(spark[column], duckdb[column], rtol=0, atol=1e-9, err_msg=column)
    for column in ("risk_tier", "top_reasons", "segment", "recommended_action"):
        assert spark[column].tolist() == duckdb[column].tolist(), column
    assert (duckdb["top_reasons"] != "").sum() > 100  # reasons were written, not just both empty
    assert spark.attrs["reason_contradictions"] == duckdb.attrs["reason_contradictions"]
    assert spark_drift == duckdb_drift
    pd.testing.assert_frame_equal(spark, duckdb, check_exact=False, rtol=0, atol=1e-9)  # columns, order, dtypes


def test_the_list_files_and_manifest_are_those_of_duckdb(both_engines):
    listing, duckdb_listing = both_engines["listing"], both_engines["duckdb_listing"]
    for name in SAME_FILES:
        assert (listing / name).read_bytes() == (duckdb_listing / name).read_bytes(), name
    assert pd.read_parquet(listing / "at_risk.parquet").columns.tolist()[:len(AT_RISK_COLUMNS)] == AT_RISK_COLUMNS
    manifest, duckdb_manifest = (json.loads((f / "manifest.json").read_text()) for f in (listing, duckdb_listing))
    by_date = {name: entry for name, entry in manifest["outputs"].items() if name.startswith("at_risk_by_date/")}
    assert {name: entry for name, entry in manifest["outputs"].items() if name not in by_date} \
        == duckdb_manifest["outputs"]
    moments = {"run_started_at", "run_finished_at", "outputs"}
    assert {k: v for k, v in manifest.items() if k not in moments} \
        == {k: v for k, v in duckdb_manifest.items() if k not in moments}


def test_spark_writes_the_list_partitioned_by_date_and_the_manifest_lists_its_files(both_engines):
    listing = both_engines["listing"]
    parts = sorted((listing / BY_DATE).iterdir())
    assert parts and [p.name for p in parts] == [f"part-{n:05d}.parquet" for n in range(len(parts))]
    assert sorted(p.relative_to(listing) for p in (listing / "at_risk_by_date").rglob("*") if p.is_file()) == \
        [p.relative_to(listing) for p in parts]  # no _SUCCESS, no .crc checksums
    outputs = json.loads((listing / "manifest.json").read_text())["outputs"]
    listed = {name: entry for name, entry in outputs.items() if name.startswith("at_risk_by_date/")}
    assert sorted(listed) == [p.relative_to(listing).as_posix() for p in parts]
    assert all(listed[p.relative_to(listing).as_posix()]["sha256"] == file_sha256(p) for p in parts)

    at_risk = pd.read_parquet(listing / "at_risk.parquet")
    in_order = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)  # the parts, one after the other
    assert sum(entry["rows"] for entry in listed.values()) == len(in_order) == len(at_risk)
    by_date = pd.read_parquet(listing / "at_risk_by_date")  # as a reader of the partitioned folder sees it
    assert by_date["as_of_date"].astype(str).eq(AS_OF.isoformat()).all()
    in_order.insert(1, "as_of_date", AS_OF.isoformat())
    pd.testing.assert_frame_equal(in_order, at_risk)  # the same rows, values and order as the list


def test_the_list_by_date_keeps_the_lists_order_and_types_part_by_part(tmp_path, monkeypatch):
    monkeypatch.setattr(spark_scoring, "ROWS_PER_PARTITION", 2)
    at_risk = pd.DataFrame({
        "customer_id": ["c7", "c2", "c9", "c1", "c4"],
        "as_of_date": AS_OF.isoformat(),
        "value_at_risk": [90.5, 40.25, 12.0, 3.5, 0.0],
        "rank": np.arange(1, 6),
        "signed_up_at": pd.to_datetime(["2024-05-01 10:30:00", "2025-01-02 00:00:00", None, "2023-12-31 23:59:59",
                                        "2025-06-01 08:15:00"]),
        "name": ["Zoë", None, "=1+1", "Müller, Jürgen", ""],
    })
    written = spark_scoring.write_list_by_date(spark_session(SparkConfig()), at_risk, tmp_path)
    parts = sorted((tmp_path / BY_DATE).iterdir())
    assert len(parts) >= 2 and [p.name for p in parts] == [f"part-{n:05d}.parquet" for n in range(len(parts))]
    assert written == {p.relative_to(tmp_path).as_posix(): len(pd.read_parquet(p)) for p in parts}
    assert sorted(p for p in (tmp_path / "at_risk_by_date").rglob("*") if p.is_file()) == parts
    back = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    back.insert(1, "as_of_date", AS_OF.isoformat())
    pd.testing.assert_frame_equal(back, at_risk)


def test_an_empty_list_by_date_is_an_empty_folder(tmp_path):
    empty = pd.DataFrame({"customer_id": pd.Series([], dtype=str), "as_of_date": pd.Series([], dtype=str)})
    assert spark_scoring.write_list_by_date(spark_session(SparkConfig()), empty, tmp_path) == {}
    assert list((tmp_path / "at_risk_by_date").rglob("*")) == []
