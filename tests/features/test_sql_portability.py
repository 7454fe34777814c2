"""Feature and label SQL is written once, engine-neutral: it must transpile from DuckDB to
Spark with every function known to Spark, so the same definitions can run on a cluster."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from features import interactions, population, rfm
from features.catalog import STAGES
from pipeline.config import FeaturesConfig

QUERIES = {f"stage {s.name}": s.query(FeaturesConfig())[0] for s in STAGES} | {
    f"stack {m.STAGE}": m.stack_query(FeaturesConfig())[0] for m in (rfm, interactions)} | {
    name: getattr(population, name)
    for name in ("ACTIVE_BY_PURCHASE_SQL", "ACTIVE_BY_SUBSCRIPTION_SQL", "INACTIVITY_CHURN_SQL",
                 "SUBSCRIPTION_CHURN_SQL", "CLV_LABEL_SQL")
}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_transpiles_to_spark_with_known_functions(name):
    spark_sql = sqlglot.transpile(QUERIES[name], read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)[0]
    tree = sqlglot.parse_one(spark_sql, read="spark")
    unknown = sorted({f.name for f in tree.find_all(exp.Anonymous)})
    assert not unknown, f"functions Spark does not know: {unknown}"
    assert " EXCEPT (" not in spark_sql and "EXCLUDE" not in spark_sql.upper()


def test_values_reach_the_engine_as_parameters_not_pasted_text():
    for name, sql in QUERIES.items():
        for window in FeaturesConfig().windows:
            assert f"< {window}" not in sql and f"<= {window}" not in sql, name
