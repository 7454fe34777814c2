"""Feature and label SQL is written once, for DuckDB, and must give the same numbers when
sqlglot transpiles it to Spark.

Transpiling only proves that Spark knows every function. Where the two engines agree on a
name but not on its meaning, a lint over each query's tree (read as DuckDB) rejects the
forms that give different numbers (measured in issue 17):

- date differences: DuckDB's `date_diff(unit, a, b)` counts unit boundaries crossed,
  Spark's counts whole units elapsed. They agree when both arguments sit on a boundary:
  unit day needs both arguments CAST to DATE (`day_diff`), hour/minute/second both cut by
  `date_trunc` to the unit. Month and year differences differ even then (Spark counts
  Jan 31 to Feb 29 as no month): they are written from year() and month() (`month_diff`).
  DuckDB's `date_sub` and `age` mean something else on Spark and are rejected.
- division: DuckDB divides decimals (and integers) as doubles, Spark keeps a quotient of
  decimals a decimal of 6 places. Every numerator is CAST to DOUBLE, or is already a double
  expression: a quotient, sqrt, or arithmetic with a double operand.
- zero divisors: DuckDB gives inf for x / 0, Spark with ANSI mode raises. Every divisor is
  guarded by NULLIF(x, 0) or by an enclosing CASE WHEN x > 0 / x <> 0 (x / x in the ELSE of
  CASE WHEN x = 0), unless it cannot be zero: a positive constant, or a positive constant
  plus a sum of counts (the +1 of the trend ratios). Counts are followed through the
  query's own aliases (`earlier` defined as `count(*) FILTER (...)`), so nothing that can
  be zero or negative slips through as "a count"."""

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


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_query_gives_the_same_numbers_on_spark(name):
    problems = portability_problems(QUERIES[name])
    assert not problems, f"{name}: {len(problems)} expression(s) Spark computes differently:\n" + "\n".join(problems)


def test_values_reach_the_engine_as_parameters_not_pasted_text():
    for name, sql in QUERIES.items():
        for window in FeaturesConfig().windows:
            assert f"< {window}" not in sql and f"<= {window}" not in sql, name


def test_the_lint_catches_each_form_spark_computes_differently():
    bad = """
    WITH h AS (SELECT customer_id, sum(amount) AS spent, count(*) AS orders, min(amount) AS smallest,
                      date_diff('day', purchased_at, cutoff_date) AS age_days
               FROM transactions GROUP BY ALL)
    SELECT date_diff('month', started_at, cutoff_date) AS months,
           date_diff('second', opened_at, resolved_at) AS seconds,
           spent / nullif(orders, 0) AS average,
           CAST(spent AS DOUBLE) / orders AS unguarded,
           CAST(spent AS DOUBLE) / (smallest + 1) AS not_a_count,
           age_days // orders AS whole
    FROM h
    """
    problems = portability_problems(bad)
    expected = [  # (what the message says, the expression it names)
        ("CAST both to DATE", "DATE_DIFF('DAY', purchased_at, cutoff_date)"),
        ("unit MONTH: write it from year() and month()", "DATE_DIFF('MONTH', started_at, cutoff_date)"),
        ("date_trunc('SECOND') both", "DATE_DIFF('SECOND', opened_at, resolved_at)"),
        ("numerator not CAST to DOUBLE", "spent / NULLIF(orders, 0)"),
        ("no zero guard on the divisor", "CAST(spent AS DOUBLE) / orders"),
        ("no zero guard on the divisor", "CAST(spent AS DOUBLE) / (smallest + 1)"),
        ("no zero guard on the divisor", "age_days // orders"),
    ]
    for rule, expression in expected:
        found = [p for p in problems if rule in p and p.endswith(f": {expression}")]
        assert len(found) == 1, f"{rule!r} on {expression!r} not reported once in {problems}"
    assert len(problems) == len(expected), problems


def test_the_lint_accepts_the_portable_forms():
    good = """
    WITH h AS (SELECT customer_id, count(*) FILTER (WHERE amount > 0) AS orders, sum(amount) AS spent,
                      date_diff('day', CAST(purchased_at AS DATE), CAST(cutoff_date AS DATE)) AS age_days
               FROM transactions GROUP BY ALL)
    SELECT 12 * (year(cutoff_date) - year(started_at)) + month(cutoff_date) - month(started_at) AS months,
           date_diff('second', date_trunc('second', opened_at), date_trunc('second', resolved_at)) AS seconds,
           CAST(spent AS DOUBLE) / nullif(orders, 0) AS average,
           CASE WHEN orders > 0 THEN CAST(spent AS DOUBLE) / orders END AS guarded,
           CASE WHEN orders = 0 THEN NULL ELSE CAST(spent AS DOUBLE) / orders END AS guarded_else,
           CAST(coalesce(sum(orders), 0) + 1.0 AS DOUBLE) / (coalesce(sum(orders), 0) + 1.0) AS trend,
           sqrt(CAST(spent AS DOUBLE) / nullif(orders, 0)) / 86400 AS root
    FROM h
    """
    assert portability_problems(good) == []


# --- the lint ---------------------------------------------------------------------------

# DuckDB functions Spark knows by the same name but computes differently
_DIFFERENT_ON_SPARK = {"date_sub", "datesub", "age"}
_SUB_DAY_UNITS = {"HOUR", "MINUTE", "SECOND"}


def portability_problems(sql: str) -> list[str]:
    """Each expression of `sql` (DuckDB) that Spark computes differently, as
    'rule: expression'. See the module docstring for the rules and why."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    aliases: dict[str, list[exp.Expression]] = {}
    for alias in tree.find_all(exp.Alias):
        aliases.setdefault(alias.alias.lower(), []).append(alias.this)
    problems = []
    for node in tree.walk():
        if isinstance(node, exp.DateDiff):
            problems += _date_diff_problems(node)
        elif isinstance(node, exp.Anonymous) and node.name.lower() in _DIFFERENT_ON_SPARK:
            problems.append(f"{node.name} counts differently on Spark (use day_diff/month_diff): {_sql(node)}")
        if isinstance(node, exp.Div) and not _is_double(node.this):
            problems.append(f"numerator not CAST to DOUBLE (a decimal quotient keeps 6 places on Spark): {_sql(node)}")
        if isinstance(node, (exp.Div, exp.IntDiv)) and not _guarded(node, aliases):
            problems.append(f"no zero guard on the divisor (NULLIF(x, 0) or CASE WHEN x > 0): {_sql(node)}")
    return problems


def _date_diff_problems(node: exp.DateDiff) -> list[str]:
    unit = node.unit.name.upper() if node.unit else "DAY"
    ends = (node.this, node.expression)
    if unit == "DAY":
        on_dates = all(isinstance(e, exp.Cast) and e.to.is_type(exp.DataType.Type.DATE) for e in ends)
        return [] if on_dates else [f"day difference of timestamps, CAST both to DATE: {_sql(node)}"]
    if unit in _SUB_DAY_UNITS:
        truncated = all(isinstance(e, (exp.TimestampTrunc, exp.DateTrunc)) and e.unit.name.upper() == unit
                        for e in ends)
        return [] if truncated else [f"{unit.lower()} difference, date_trunc('{unit}') both: {_sql(node)}"]
    return [f"date_diff of unit {unit}: write it from year() and month() (month_diff): {_sql(node)}"]


def _is_double(node: exp.Expression) -> bool:
    """Whether `node` is a double on both engines, whatever its inputs' types."""
    node = _unwrapped(node)
    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DataType.Type.DOUBLE)
    if isinstance(node, (exp.Div, exp.Sqrt, exp.Ln, exp.Exp)):
        return True
    if isinstance(node, (exp.Add, exp.Sub, exp.Mul)):
        return _is_double(node.this) or _is_double(node.expression)
    if isinstance(node, exp.Neg):
        return _is_double(node.this)
    return False


def _guarded(div: exp.Div | exp.IntDiv, aliases: dict[str, list[exp.Expression]]) -> bool:
    divisor = _unwrapped(div.expression)
    if isinstance(divisor, exp.Nullif) and _is_zero(divisor.expression):
        return True
    return _positive(divisor, aliases) or _guarded_by_case(div, divisor)


def _guarded_by_case(div: exp.Expression, divisor: exp.Expression) -> bool:
    """Whether an enclosing CASE reaches `div` only where `divisor` is not zero."""
    child, parent = div, div.parent
    while parent is not None:
        if isinstance(parent, exp.If) and child is parent.args.get("true"):
            if _compares_to_zero(parent.this, divisor, (exp.GT, exp.NEQ)):
                return True
        if isinstance(parent, exp.Case) and child is parent.args.get("default"):
            if any(_compares_to_zero(branch.this, divisor, (exp.EQ,)) for branch in parent.args["ifs"]):
                return True
        child, parent = parent, parent.parent
    return False


def _compares_to_zero(condition: exp.Expression, divisor: exp.Expression, kinds: tuple) -> bool:
    return (isinstance(condition, kinds) and _is_zero(condition.expression)
            and _unwrapped(condition.this) == divisor)


def _positive(node: exp.Expression, aliases: dict, seen: frozenset = frozenset()) -> bool:
    """Provably > 0: a positive constant, or a positive constant plus a non-negative count."""
    node = _unwrapped(node)
    if isinstance(node, exp.Cast):
        return _positive(node.this, aliases, seen)
    if isinstance(node, exp.Literal):
        return node.is_number and float(node.this) > 0
    if isinstance(node, exp.Add):
        a, b = node.this, node.expression
        return ((_positive(a, aliases, seen) and _non_negative(b, aliases, seen))
                or (_positive(b, aliases, seen) and _non_negative(a, aliases, seen)))
    return False


def _non_negative(node: exp.Expression, aliases: dict, seen: frozenset = frozenset()) -> bool:
    """Provably >= 0: counts, non-negative constants, and sums, maxima and coalesces of them;
    a column is followed to every expression the query names it by (a name it does not
    define, such as a table column, proves nothing)."""
    node = _unwrapped(node)
    if isinstance(node, exp.Count):
        return True
    if isinstance(node, exp.Cast):
        return _non_negative(node.this, aliases, seen)
    if isinstance(node, exp.Literal):
        return node.is_number and float(node.this) >= 0
    if isinstance(node, exp.Column):
        name = node.name.lower()
        return (name in aliases and name not in seen
                and all(_non_negative(d, aliases, seen | {name}) for d in aliases[name]))
    if isinstance(node, (exp.Sum, exp.Max, exp.Min)):
        return _non_negative(node.this, aliases, seen)
    if isinstance(node, (exp.Add, exp.Mul)):
        return _non_negative(node.this, aliases, seen) and _non_negative(node.expression, aliases, seen)
    if isinstance(node, exp.Coalesce):
        return all(_non_negative(e, aliases, seen) for e in [node.this, *node.expressions])
    return False


def _unwrapped(node: exp.Expression) -> exp.Expression:
    """`node` without parentheses and aggregate FILTERs (neither changes its value's sign or type)."""
    while isinstance(node, (exp.Paren, exp.Filter)):
        node = node.this
    return node


def _is_zero(node: exp.Expression) -> bool:
    node = _unwrapped(node)
    return isinstance(node, exp.Literal) and node.is_number and float(node.this) == 0


def _sql(node: exp.Expression) -> str:
    return node.sql("duckdb", comments=False)
