"""`churn score`, the nightly job: score every active customer with the champion models and
publish the dated at-risk list with its summary and manifest, whole or not at all.

champions -> preflight (fresh input, the tables the champions need, config that fits) ->
customers active at the date, scored and explained (on Spark with `data.engine: spark`) ->
drift check -> the list -> manifest -> publish (with the CRM import files of scoring.exports;
on Spark also the list as Parquet partitioned by date)."""

from __future__ import annotations

import datetime as dt
import logging

from pipeline import tracking
from pipeline.at_risk.crm.contacts import fetch_contacts
from pipeline.at_risk.listing import build_at_risk_list
from pipeline.at_risk.preflight import preflight
from pipeline.at_risk.publish import build_manifest, publish_at_risk_list
from pipeline.at_risk.scores import check_drift, passthrough_columns, score_customers
from pipeline.config import Config
from pipeline.logs import stage
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def run_scoring(tables: Tables, cfg: Config, as_of: dt.date, dry_run: bool = False) -> dict:
    """Score, list and publish; return the manifest (with `output_dir` unless a dry run)."""
    started = dt.datetime.now(dt.UTC)
    churn, clv = tracking.load_champions(cfg.tracking)
    warnings = preflight(tables, cfg, as_of, (churn, clv))
    with stage("score active customers") as info:
        scored, drift = score_on_engine(tables, cfg, as_of, churn, clv)
        info["customers"] = len(scored)
    warnings += check_drift(drift, cfg)
    at_risk = build_at_risk_list(scored, as_of, churn.version, clv.version,
                                 passthrough_columns(tables, cfg.scoring.passthrough_columns), cfg.scoring)
    manifest = build_manifest(tables, as_of, scored, at_risk, (churn, clv), drift, warnings, started, cfg.scoring)
    if dry_run:
        log.info("dry run: nothing written (%d customers scored)", len(scored))
        return manifest
    contacts = fetch_contacts(tables, cfg.scoring)  # for the CRM files; None without scoring.exports
    manifest["output_dir"] = str(publish_at_risk_list(at_risk, scored, manifest, churn.fitted, cfg.scoring, contacts,
                                                      engine_list_writer(cfg)))
    return manifest


def score_on_engine(tables: Tables, cfg: Config, as_of: dt.date, churn, clv):
    """score_customers in this process (DuckDB), or on Spark (pipeline/engines/spark_scoring.py)."""
    if cfg.data.engine == "spark":
        from pipeline.engines.spark_scoring import score_customers_on_spark

        return score_customers_on_spark(tables, cfg, as_of, churn, clv)
    return score_customers(tables, cfg, as_of, churn.fitted, clv.fitted)


def engine_list_writer(cfg: Config):
    """On Spark, the list is also written as Parquet partitioned by date (None on DuckDB)."""
    if cfg.data.engine != "spark":
        return None
    from pipeline.engines.spark_scoring import list_by_date_writer

    return list_by_date_writer(cfg.data.spark)
