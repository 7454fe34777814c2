"""Where the validated tables come from and which engine computes on them.

    data.source  (files in data.path, or a PostgreSQL schema: postgres.py copies its tables
                  into Parquet files first, so the same contract checks read them)
        -> data.engine  (duckdb: pipeline/tables.py; spark: spark.py)
        -> Tables: validated contract tables that feature stages query with SQL

Every entry point opens its tables here, once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.config import DataConfig


def open_tables(data: DataConfig, run_started_at: dt.datetime, quarantine_dir: Path | None):
    """The validated tables of the config's source, in its engine (see the module docstring)."""
    from pipeline.tables import load_tables

    folder = data.path
    if data.source is not None:
        from pipeline.engines.postgres import copy_tables_to_parquet

        folder = copy_tables_to_parquet(data.source, data.source_schema, data.engine_dir)
    if data.engine == "spark":
        from pipeline.engines.spark import load_spark_tables

        return load_spark_tables(folder, run_started_at, quarantine_dir, data)
    return load_tables(folder, run_started_at, quarantine_dir, data.format, data.engine_memory_gb, data.engine_dir)
