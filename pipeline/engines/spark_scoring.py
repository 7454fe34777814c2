"""Scoring on Spark (`data.engine: spark`): the champions applied to tonight's customers by
Spark, every customer explained there by the same code as on DuckDB, and the at-risk list
also written by Spark, as Parquet partitioned by date.

    the features of the active customers (at_risk.scores.active_features, on the driver)
      -> a Spark DataFrame of them (through Arrow)
      -> churn probability and CLV: the registered champions as MLflow Spark UDFs of the
         columns their pyfunc signature names (tracking.Champion.spark_udf)
      -> per Arrow batch on the workers (mapInPandas): tier, value at risk, reasons and
         recommended action by at_risk.scores.explain_customers, the function DuckDB scoring
         calls, with the fitted churn model shipped to the workers (each batch's input to it
         prepared there, once); each batch counts its contradicting reasons, and the counts
         are summed
      -> on the driver, in the features' order: the segment (quintiles of everyone scored, a
         rank over the whole population) and the drift (distributions of the whole
         population), by at_risk.scores as on DuckDB.

Reasons compare a customer with the typical customer of everyone scored tonight: the median
of a feature over the population (models/reason_families.typical, the only way the reason
writers and checkers read the population). A batch holds some of the customers, so it is
given a one-row stand-in for the population (`typical_customer`) whose every numeric column
holds the whole population's median: `typical` of the stand-in is the whole population's
value, bit for bit.

The list by date (`at_risk_by_date/as_of_date=YYYY-MM-DD/part-00000.parquet`, ...) is written
into the dated folder while it is staged, so it is published whole with the other files. Spark
writes it from the driver's list, in the list's order; on a cluster, `scoring.output_dir` must
be a folder every executor reaches at the same path (a shared file system)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.reason_families import typical
from pipeline.at_risk.scores import (
    active_features,
    explain_customers,
    log_contradictions,
    note_reasons,
    score_drift,
    scored_customers,
)
from pipeline.config import Config, SparkConfig
from pipeline.engines.session import spark_session
from pipeline.logs import stage
from pipeline.tables import Tables

CONTRADICTIONS = "reason_contradictions"  # per batch: its count on its first row, 0 on the others
EXPLAINED = ["churn_probability", "risk_tier", "predicted_clv", "value_at_risk", "top_reasons", "recommended_action"]
EXPLAINED_SCHEMA = ("customer_id string, churn_probability double, risk_tier string, predicted_clv double, "
                    f"value_at_risk double, top_reasons string, recommended_action string, {CONTRADICTIONS} long")
BY_DATE = "at_risk_by_date"
# Rows per Spark partition of the customers scored and of the list by date (one file each): a
# Python worker's start (imports, loading the models) costs seconds, so a partition gets work
# worth it; a smaller frame keeps the partitions Spark makes of it.
ROWS_PER_PARTITION = 100_000
# The list's Parquet as pandas writes it: timestamps in microseconds, without a zone where the
# list has none (Spark's defaults are INT96 and the session's zone).
WRITE_SETTINGS = {"spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
                  "spark.sql.timestampType": "TIMESTAMP_NTZ"}


def score_customers_on_spark(tables: Tables, cfg: Config, as_of: dt.date, churn, clv
                             ) -> tuple[pd.DataFrame, dict[str, float]]:
    """at_risk.scores.score_customers on Spark, from the champions (tracking.Champion): the
    same rows, columns, order and values."""
    features = active_features(tables, cfg, as_of)
    with stage("score and explain on Spark") as info:
        explained = explain_on_spark(spark_session(cfg.data.spark), features, churn, clv, cfg)
        note_reasons(explained, info)
    log_contradictions(explained.attrs["reason_contradictions"])
    probability = explained["churn_probability"].to_numpy()
    return scored_customers(features, explained, cfg), score_drift(features, probability, churn.fitted)


def explain_on_spark(spark, features: pd.DataFrame, churn, clv, cfg: Config) -> pd.DataFrame:
    """explain_customers of every row of `features`, computed by Spark (the module docstring);
    indexed as `features`, with the summed count of contradicting reasons in attrs."""
    frame = in_partitions(spark.createDataFrame(features), len(features))
    frame = frame.withColumns({"churn_probability": churn.spark_udf(spark)(*churn.input_names),
                               "predicted_clv": clv.spark_udf(spark)(*clv.input_names)})
    explain = explain_batches(churn.fitted, cfg, typical_customer(features), features.dtypes)
    rows = frame.mapInPandas(explain, schema=EXPLAINED_SCHEMA).toPandas().set_index("customer_id")
    rows = rows.loc[features["customer_id"].to_numpy()]
    explained = pd.DataFrame({name: rows[name].to_numpy() for name in EXPLAINED}, index=features.index)
    explained.attrs["reason_contradictions"] = int(rows[CONTRADICTIONS].sum())
    return explained


def explain_batches(churn_model, cfg: Config, population: pd.DataFrame, dtypes: pd.Series):
    """The function mapInPandas runs over the batches of the scored features: each batch with
    the features' own dtypes again (Spark hands text over as objects, missing as None), then
    explain_customers of the churn model's input of it against `population`."""
    columns, types = list(dtypes.index), dtypes.to_dict()

    def explain(batches):
        for batch in batches:
            features = batch[columns].astype(types)
            explained = explain_customers(churn_model.prepare(features), batch["churn_probability"].to_numpy(),
                                          batch["predicted_clv"].to_numpy(), churn_model, cfg, population)
            contradictions = np.zeros(len(batch), dtype=np.int64)
            contradictions[:1] = explained.attrs["reason_contradictions"]
            yield explained.assign(customer_id=features["customer_id"].to_numpy(), **{CONTRADICTIONS: contradictions})

    return explain


def typical_customer(population: pd.DataFrame) -> pd.DataFrame:
    """One row that stands for `population` wherever reasons read it (`typical`): each numeric
    column holds the population's median, any other column is missing."""
    return pd.DataFrame({name: [typical(population, name) if pd.api.types.is_numeric_dtype(population[name])
                                else None] for name in population.columns})


def in_partitions(frame, rows: int):
    """`frame` (of `rows` rows) in partitions of about ROWS_PER_PARTITION rows, or fewer."""
    return frame.coalesce(max(1, math.ceil(rows / ROWS_PER_PARTITION)))


def list_by_date_writer(cfg: SparkConfig):
    """What publish_at_risk_list calls to add the list by date to the staged folder."""
    def write(at_risk: pd.DataFrame, folder: Path) -> dict[str, int]:
        return write_list_by_date(spark_session(cfg), at_risk, folder)
    return write


def write_list_by_date(spark, at_risk: pd.DataFrame, folder: Path) -> dict[str, int]:
    """Write the list with Spark into `folder`/at_risk_by_date as Parquet partitioned by
    as_of_date, part by part in the list's order; return {file, relative to `folder`: rows}.
    Spark's bookkeeping files (_SUCCESS, .crc checksums) are removed and each part is named by
    its place (part-00000.parquet, ...) instead of a random id, so that a rerun writes the same
    files with the same rows (not always the same bytes: Spark's Parquet writer lists a column's
    encodings in no fixed order)."""
    session = spark.newSession()  # the settings below stay in it
    for key, value in WRITE_SETTINGS.items():
        session.conf.set(key, value)
    target = folder / BY_DATE
    as_arrow = pa.Table.from_pandas(at_risk, preserve_index=False)  # its types, even of an empty list
    in_partitions(session.createDataFrame(as_arrow), len(at_risk)).write.partitionBy("as_of_date").parquet(str(target))
    for leftover in [*target.rglob("_SUCCESS"), *target.rglob(".*.crc")]:
        leftover.unlink()
    written = {}
    for partition in sorted(p for p in target.iterdir() if p.is_dir()):
        for number, part in enumerate(sorted(partition.glob("part-*.parquet"))):
            named = part.rename(partition / f"part-{number:05d}.parquet")
            written[named.relative_to(folder).as_posix()] = pq.read_metadata(named).num_rows
    return written
