"""The Spark session of `data.engine: spark`: one per process, made from `data.spark`.

Settings measured to matter (issue 17): Arrow on (without it, missing pandas strings reach
Spark as the text 'nan'); the session's time zone UTC (the contract's timestamps are UTC
wall-clock times; Spark would read them in the machine's zone); the workers run this
process's Python; on a laptop or CI the driver binds 127.0.0.1, and the web UI is off."""

from __future__ import annotations

import os
import sys

from pipeline.config import SparkConfig

BASE_OPTIONS = {
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def spark_session(cfg: SparkConfig):
    """The process's Spark session, started on first use (about 4 s for local[2])."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if cfg.master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in {**BASE_OPTIONS, **cfg.options}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
