"""data.source: postgresql://... against a real PostgreSQL server (conftest.py starts one): the
tables read from a schema validate, quarantine and fail exactly as the same world's files do,
whatever realistic types the database stores them in; a server that cannot be reached or
refuses the user ends in one paragraph with exit code 3 and never shows the password."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import DataConfig
from pipeline.contract import TABLES
from pipeline.engines import open_tables
from pipeline.engines import postgres as pg
from pipeline.errors import DataError
from pipeline.tables import load_tables
from tests.conftest import ROOT, RUN_AT, tiny_world, write_config, write_world
from tests.pipeline.engines.conftest import DATABASE, PASSWORD, USER

runner = CliRunner()


@pytest.fixture(autouse=True)
def password(monkeypatch, tmp_path):
    """The password in the environment, as in production; no ~/.pgpass of the machine's."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no.pgpass"))


@pytest.fixture(autouse=True)
def cli_logging():
    """`churn ...` in the runner sets up logging to its captured stream: undone afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook
    yield
    root.handlers[:], sys.excepthook = saved[0], saved[2]
    root.setLevel(saved[1])


def from_database(server, schema: str, tmp_path, quarantine_dir=None):
    data = DataConfig(source=server.uri, source_schema=schema, engine_dir=tmp_path / "engine")
    return open_tables(data, RUN_AT, quarantine_dir)


def from_files(world, tmp_path, quarantine_dir=None):
    return load_tables(write_world(tmp_path / "files", world), RUN_AT, quarantine_dir)


def assert_same_tables(left, right) -> None:
    assert left.present == right.present
    for name in sorted(left.present):
        sql = f"SELECT * FROM {name} ORDER BY ALL"
        pd.testing.assert_frame_equal(left.query(sql), right.query(sql), obj=name)


def with_offset(values: pd.Series, hours: int) -> pd.Series:
    """Wall times as the same instants written in another zone (`+02`)."""
    shifted = pd.to_datetime(values) + pd.Timedelta(hours=hours)
    return shifted.dt.strftime(f"%Y-%m-%d %H:%M:%S{hours:+03d}").where(values.notna(), None)


def test_churn_validate_reads_the_schema_and_counts_the_rows_of_the_files(postgres_server, tmp_path):
    """In a process of its own, as a nightly job runs it: its copy of the tables is gone when it ends."""
    write_world(tmp_path / "data", tiny_world())
    from_csv = runner.invoke(app, ["validate", "--config", str(write_config(tmp_path))])
    postgres_server.load_world("validate", tiny_world())
    project = tmp_path / "project"
    project.mkdir()
    config = write_config(project, data={"source": postgres_server.uri, "source_schema": "validate",
                                         "engine_dir": str(tmp_path / "engine")})
    from_db = subprocess.run([sys.executable, "-m", "pipeline.cli", "validate", "--config", str(config)],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert from_csv.exit_code == 0 and from_db.returncode == 0, from_db.stderr
    counts = [json.loads(out.split("is valid: ")[1].splitlines()[0]) for out in (from_csv.output, from_db.stderr)]
    assert counts[0] == counts[1] == {name: len(frame) for name, frame in tiny_world().items()}
    assert "copied validate.transactions: 9 rows" in from_db.stderr
    assert PASSWORD not in from_db.stderr + from_db.stdout
    assert (tmp_path / "engine").is_dir() and not list((tmp_path / "engine").iterdir())


def test_churn_features_from_the_database_equal_those_from_files(postgres_server, tmp_path):
    """The stages downstream see no difference (training on the tiny world is not possible, and
    on a generated one takes minutes: scoring reads the same tables as this)."""
    write_world(tmp_path / "data", tiny_world())
    schema = postgres_server.load_world("features", tiny_world())
    (tmp_path / "db").mkdir()
    db_config = write_config(tmp_path / "db", data={"source": postgres_server.uri, "source_schema": schema,
                                                    "engine_dir": str(tmp_path / "engine")})
    frames = []
    for config, out in ((write_config(tmp_path), tmp_path / "files.parquet"), (db_config, tmp_path / "db.parquet")):
        result = runner.invoke(app, ["features", "--config", str(config), "--as-of", "2025-06-01", "--out", str(out)])
        assert result.exit_code == 0, result.output
        frames.append(pd.read_parquet(out))
    assert len(frames[0]) == 3
    pd.testing.assert_frame_equal(frames[0], frames[1])


# Each way a company's database may store the world; every one reads as the files do.
STORED_TYPES = {
    "realistic": {},
    "zoned, dated, narrow and wide": {
        "customers.signup_at": "date", "customers.country": "char(2)", "customers.name": "varchar(40)",
        "transactions.amount": "double precision", "transactions.discount_amount": "numeric",
        "transactions.purchased_at": "timestamp(0)", "interactions.occurred_at": "timestamptz",
        "subscriptions.ended_at": "timestamptz", "surveys.nps_score": "smallint",
        "support_tickets.satisfaction": "bigint", "subscriptions.monthly_fee": "real",
    },
    "all text, as staged from CSV": {f"{t}.{c.name}": "text" for t in TABLES for c in TABLES[t].columns},
}


@pytest.mark.parametrize("case", STORED_TYPES, ids=STORED_TYPES.keys())
def test_the_tables_read_from_a_database_equal_those_read_from_files(postgres_server, tmp_path, case):
    types, world = STORED_TYPES[case], tiny_world()
    stored = {name: frame.copy() for name, frame in world.items()}
    if types.get("interactions.occurred_at") == "timestamptz":
        # instants written in +02 (the server's session zone is New York): UTC wall times arrive
        stored["interactions"]["occurred_at"] = with_offset(world["interactions"]["occurred_at"], 2)
        stored["subscriptions"]["ended_at"] = with_offset(world["subscriptions"]["ended_at"], -5).fillna("infinity")
    schema = postgres_server.load_world(f"types_{list(STORED_TYPES).index(case)}", stored, types)
    assert_same_tables(from_database(postgres_server, schema, tmp_path), from_files(world, tmp_path))


def test_broken_rows_give_the_contract_error_of_the_files(postgres_server, tmp_path):
    world = tiny_world()
    world["transactions"].loc[4, "discount_amount"] = -3.0  # t5, row 5
    world["transactions"].loc[2, "transaction_id"] = "t2"  # rows 2 and 3
    world["surveys"].loc[1, "nps_score"] = 11
    schema = postgres_server.load_world("broken", world)
    with pytest.raises(DataError) as from_db:
        from_database(postgres_server, schema, tmp_path)
    with pytest.raises(DataError) as from_csv:
        from_files(world, tmp_path)
    problems = [[line for line in str(e.value).splitlines() if line.startswith("  - ")] for e in (from_db, from_csv)]
    assert problems[0] == problems[1] and len(problems[0]) == 3
    assert "transactions.transaction_id [duplicate key]: 1 row(s); e.g. transaction_id='t2' on rows [2, 3]" in (
        str(from_db.value))
    assert not list((tmp_path / "engine").glob("churn-engine-*")), "a failed run leaves no engine behind"


def test_rows_for_unknown_customers_are_set_aside_as_from_files(postgres_server, tmp_path):
    world = tiny_world()
    world["interactions"].loc[len(world["interactions"])] = ["c9", "2025-06-02 10:00", "web", "visit"]
    world["transactions"].loc[len(world["transactions"])] = ["t10", "c1", "2025-09-02 10:00", 0.0, "toys", 0.0, "web"]
    schema = postgres_server.load_world("quarantine", world)
    from_db = from_database(postgres_server, schema, tmp_path, tmp_path / "db_quarantine")
    from_csv = from_files(world, tmp_path, tmp_path / "csv_quarantine")
    set_aside = [{name: n for name, n in t.quarantined.items() if n} for t in (from_db, from_csv)]
    assert set_aside[0] == set_aside[1] == {"transactions": 1, "interactions": 1}
    for name in ("transactions.csv", "interactions.csv"):
        assert (tmp_path / "db_quarantine" / name).read_text() == (tmp_path / "csv_quarantine" / name).read_text()
    assert_same_tables(from_db, from_csv)


def test_a_credentials_file_works_in_place_of_pgpassword(postgres_server, tmp_path, monkeypatch):
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres_server.port}:{DATABASE}:{USER}:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.delenv("PGPASSWORD")
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    schema = postgres_server.load_world("pgpass", tiny_world())
    assert from_database(postgres_server, schema, tmp_path).row_counts["customers"] == 3


def _unused_port() -> int:
    from tests.pipeline.engines.conftest import _free_port

    return _free_port()


# (what is wrong, how to make it so, what the one paragraph must say)
FAILURES = {
    "wrong password": (lambda s, env: env.update(PGPASSWORD="not-" + PASSWORD) or s.uri,
                       ['password authentication failed for user "churn"', "PGPASSWORD", "~/.pgpass"]),
    "no password": (lambda s, env: env.update(PGPASSWORD=None) or s.uri, ["no password supplied", "PGPASSWORD"]),
    "nothing listens": (lambda s, env: s.uri.replace(f":{s.port}/", f":{_unused_port()}/"),
                        ["Connection refused", "Check the host and port"]),
    "no such database": (lambda s, env: s.uri.replace(f"/{DATABASE}", "/nowhere"),
                         ['database "nowhere" does not exist', "database nowhere on 127.0.0.1"]),
    "no such schema": (lambda s, env: s.uri, ["Schema sales (data.source_schema) does not exist in the PostgreSQL "
                                              f"database {DATABASE} on 127.0.0.1"]),
    "no transactions": (lambda s, env: s.uri, [f"Required table(s) transactions not found in schema partial of the "
                                               f"PostgreSQL database {DATABASE} on 127.0.0.1", "it has customers."]),
}


@pytest.mark.parametrize("case", FAILURES, ids=FAILURES.keys())
def test_a_source_that_cannot_be_read_is_one_paragraph_without_the_password(postgres_server, tmp_path, case):
    make, expected = FAILURES[case]
    postgres_server.load_world("partial", {"customers": tiny_world()["customers"]})
    env = {"PGPASSWORD": PASSWORD}
    uri = make(postgres_server, env)
    schema = {"no such schema": "sales", "no transactions": "partial"}.get(case, "public")
    config = write_config(tmp_path, data={"source": uri, "source_schema": schema, "engine_dir": str(tmp_path / "e")})
    result = runner.invoke(app, ["validate", "--config", str(config)], env=env)
    assert result.exit_code == DataError.exit_code == 3, result.output
    last = result.output.strip().splitlines()[-1]
    assert "ERROR" in last and all(part in last for part in expected), last
    assert "Traceback" not in result.output and PASSWORD not in result.output
    assert not list((tmp_path / "e").glob("churn-*"))


def test_a_big_table_streams_in_row_groups_the_same_each_time_and_abandoned_copies_go(postgres_server, tmp_path, monkeypatch):
    monkeypatch.setattr(pg, "ROWS_PER_GROUP", 1_000)
    monkeypatch.setattr(pg, "CSV_BLOCK_BYTES", 16 << 10)
    schema = postgres_server.load_world("big", {"customers": tiny_world()["customers"]})
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE TABLE {schema}.transactions AS SELECT 't' || i AS transaction_id, "
                     "'c' || (i % 3 + 1) AS customer_id, timestamp '2025-01-01' + i * interval '1 minute' "
                     "AS purchased_at, (i % 500 + 1)::numeric(12,2) / 4 AS amount FROM generate_series(1, 5000) i")
    abandoned = tmp_path / "engine" / "churn-source-999999999-x"  # a process that no longer runs
    abandoned.mkdir(parents=True)
    folder = pg.copy_tables_to_parquet(postgres_server.uri, schema, tmp_path / "engine")
    assert not abandoned.exists() and folder.name.startswith(f"churn-source-{os.getpid()}-")
    copied = pq.ParquetFile(folder / "transactions.parquet")
    assert copied.metadata.num_rows == 5000 and 3 <= copied.metadata.num_row_groups <= 5  # ~1,000 rows each
    frame = copied.read().to_pandas()
    assert frame["transaction_id"].tolist() == [f"t{i}" for i in range(1, 5001)]  # the stored order
    assert frame["amount"].sum() == sum((i % 500 + 1) / 4 for i in range(1, 5001))
    again = pg.copy_tables_to_parquet(postgres_server.uri, schema, tmp_path / "engine")
    assert (again / "transactions.parquet").read_bytes() == (folder / "transactions.parquet").read_bytes(), \
        "the same rows make the same file: the run's data fingerprint does not change"


def test_a_value_beyond_the_pipelines_range_names_the_table(postgres_server, tmp_path):
    world = tiny_world()
    world["transactions"].loc[0, "purchased_at"] = "12025-01-10 10:00"
    schema = postgres_server.load_world("far_future", world)
    with pytest.raises(DataError, match=r"^Table transactions: far_future.transactions in the PostgreSQL database "
                                        r"shop on 127.0.0.1:\d+ as user churn holds a value that cannot be read"):
        from_database(postgres_server, schema, tmp_path)
