"""DuckDB SQL as Spark SQL: sqlglot's transpiling, plus what it leaves to do so that Spark
computes what DuckDB does (an ordered list, text parsed by TRY_CAST). pipeline/engines/spark.py
runs every statement through `spark_sql` (and validation's trees through `spark_tree`)."""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp


@functools.lru_cache(maxsize=1024)
def spark_sql(sql: str) -> str:
    """DuckDB SQL as Spark SQL (`$name` parameters become `:name`), transpiled once per text."""
    return spark_tree(sqlglot.parse_one(sql, read="duckdb")).sql(dialect="spark")


def spark_tree(tree: exp.Expression) -> exp.Expression:
    """What sqlglot's transpiling leaves to do: DuckDB's meaning of an ordered list and of
    text parsed by TRY_CAST."""
    return tree.transform(_ordered_lists).transform(_duckdb_try_casts)


def _ordered_lists(node: exp.Expression) -> exp.Expression:
    """`list(x ORDER BY x)`: Spark's collect_list keeps no order, a sorted array does."""
    if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
        ordered = node.this
        keys = ordered.expressions
        if len(keys) == 1 and keys[0].this == ordered.this and not keys[0].args.get("desc"):
            return exp.func("sort_array", exp.ArrayAgg(this=ordered.this.copy()))
    return node


# TRY_CAST parses text as DuckDB does (measured value by value against Spark 4.3's own): an
# integer may have decimals (rounded: '3.0' -> 3, '7.5' -> 8) or an exponent, below 2^63; a
# number may not end in Java's d/f suffixes; a boolean may not have blanks around it; a
# timestamp needs a whole date (not '2025' or '2025-01'), may use '/' in it, takes no blanks
# around it and no hour without minutes. Each expression is valid for a column of any type:
# `typeof` picks the text branch, and Spark folds it away. Left as they differ (rare in
# exports): '0x10' and '1_000' (numbers to DuckDB), '24:00:00', 'T10:00Z', 'infinity', 'epoch'.
_X = "__duckdb_cast_argument__"
_TEXT = f"CAST({_X} AS STRING)"
_JAVA_SUFFIX = r"'^\\s*[+-]?[0-9.]+([eE][+-]?[0-9]+)?[dDfF]\\s*$'"
_NUMBER = f"TRY_CAST(CASE WHEN {_TEXT} RLIKE {_JAVA_SUFFIX} THEN NULL ELSE {_X} END AS DOUBLE)"
_NUMBER_TEXT = _NUMBER.replace(_X, _TEXT)
_DATE_TIME = r"'^[0-9]{4}([-/])[0-9]{1,2}\\1[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{2}.*)?$'"
_DUCKDB_TRY_CASTS = {
    exp.DataType.Type.BIGINT: (f"coalesce(TRY_CAST({_TEXT} AS BIGINT), TRY_CAST(CASE WHEN abs({_NUMBER_TEXT}) "
                               f"< 9223372036854775807.0 THEN round({_NUMBER_TEXT}) END AS BIGINT))"),
    exp.DataType.Type.DOUBLE: _NUMBER,
    exp.DataType.Type.BOOLEAN: (f"CASE WHEN typeof({_X}) = 'string' AND {_TEXT} <> trim({_TEXT}) THEN NULL "
                                f"ELSE TRY_CAST({_X} AS BOOLEAN) END"),
    exp.DataType.Type.TIMESTAMPNTZ: (  # DuckDB's TIMESTAMP
        f"CASE WHEN typeof({_X}) <> 'string' THEN TRY_CAST({_X} AS TIMESTAMP_NTZ) "
        f"WHEN {_TEXT} RLIKE {_DATE_TIME} "
        f"THEN TRY_CAST(regexp_replace({_TEXT}, '^([0-9]{{4}})/([0-9]{{1,2}})/', '$1-$2-') AS TIMESTAMP_NTZ) END"),
}


def _duckdb_try_casts(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.TryCast) and node.to.this in _DUCKDB_TRY_CASTS:
        template = _cast_template(node.to.this)
        return template.transform(lambda n: node.this.copy() if isinstance(n, exp.Column) and n.name == _X else n)
    return node


@functools.cache
def _cast_template(to: exp.DataType.Type) -> exp.Expression:
    return sqlglot.parse_one(_DUCKDB_TRY_CASTS[to], read="spark")
