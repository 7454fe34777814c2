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
from pipeline.errors import DataError


def open_tables(data: DataConfig, run_started_at: dt.datetime, quarantine_dir: Path | None):
    """The validated tables of the config's source, in its engine (see the module docstring)."""
    if data.source is None:
        return _validated(data.path, data, run_started_at, quarantine_dir)
    from pipeline.engines.postgres import copy_tables_to_parquet, describe_source

    folder = copy_tables_to_parquet(data.source, data.source_schema, data.engine_dir)
    try:
        return _validated(folder, data, run_started_at, quarantine_dir)
    except DataError as exc:  # said of the database, not of the copy it was checked in
        where = f"{describe_source(data.source)}, schema {data.source_schema}"
        raise DataError(str(exc).replace(str(folder), where).replace(
            "in the source files (rows are numbered from 1 after the header)",
            "in the database's tables (rows are numbered in the order the database returns them)")) from None


def source_label(data: DataConfig) -> str:
    """Where the tables come from, in words, for log lines."""
    if data.source is None:
        return str(data.path)
    from pipeline.engines.postgres import describe_source

    return f"{describe_source(data.source)}, schema {data.source_schema}"


def _validated(folder: Path, data: DataConfig, run_started_at: dt.datetime, quarantine_dir: Path | None):
    from pipeline.tables import load_tables

    if data.engine == "spark":
        from pipeline.engines.spark import load_spark_tables

        return load_spark_tables(folder, run_started_at, quarantine_dir, data)
    return load_tables(folder, run_started_at, quarantine_dir, data.format, data.engine_memory_gb, data.engine_dir)
