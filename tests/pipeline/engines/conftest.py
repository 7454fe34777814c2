"""A real PostgreSQL server for the tests: initdb in a temporary folder, started on a free
local port (TCP on 127.0.0.1 with password authentication, plus a Unix socket in the same
folder), stopped and removed afterwards. Debian's `postgresql` package provides the binaries
(`make postgres` installs it as root); without them the tests that need it are skipped.

As root, initdb refuses to run: the server then runs as the `postgres` system user (created by
that package), through runuser."""

from __future__ import annotations

import math
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from pipeline.contract import TABLES

USER, PASSWORD, DATABASE = "churn", "s3cret-Pg-word", "shop"
# The types a company's tables typically have for each contract kind.
PG_TYPES = {"string": "text", "timestamp": "timestamp", "number": "numeric(12,2)", "integer": "integer",
            "boolean": "boolean"}


@dataclass(frozen=True)
class PostgresServer:
    port: int
    socket_dir: Path

    @property
    def uri(self) -> str:
        """data.source: no password, it comes from PGPASSWORD."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def connect(self, dbname: str = DATABASE, user: str = USER):
        """A connection over the Unix socket, where every user is trusted (for setting up)."""
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, dbname=dbname, user=user,
                               autocommit=True)

    def load_world(self, schema: str, world: dict[str, pd.DataFrame], types: dict[str, str] | None = None) -> str:
        """Create `schema` holding the world's tables (CREATE TABLE with realistic types, then
        COPY, rows in the frames' order); `types` overrides a column's type ("table.column": type).
        Returns the schema."""
        from psycopg import sql

        types = types or {}
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}").format(sql.Identifier(schema)))
            for name, frame in world.items():
                contract = {c.name: c.kind for c in TABLES[name].columns} if name in TABLES else {}
                columns = [sql.SQL("{} {}").format(
                    sql.Identifier(col), sql.SQL(types.get(f"{name}.{col}", PG_TYPES[contract.get(col, "string")])))
                    for col in frame.columns]
                target = sql.Identifier(schema, name)
                conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(columns)))
                with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
                    for row in frame.itertuples(index=False):
                        copy.write_row([_cell(v) for v in row])
        return schema


def _cell(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = _server_binaries()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: `make postgres` installs Debian's "
                    "postgresql package (as root with apt-get); the database-source tests need a real server")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` system user to run the server as "
                        "(Debian's postgresql package creates it)")
        run_as = ["runuser", "-u", "postgres", "--"]
    _stop_abandoned_servers(bindir, run_as)
    # In /tmp itself, which the server's user can reach; named after this process.
    folder = Path(tempfile.mkdtemp(prefix=f"churn-pg-test-{os.getpid()}-"))
    if run_as:
        shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], cwd=folder, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            log = folder / "server.log"
            raise RuntimeError(f"{' '.join(args)} failed: {done.stdout}{done.stderr}"
                               + (log.read_text() if log.exists() else ""))

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync",
            "--auth-local=trust", "--auth-host=scram-sha-256")
        options = (f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w",
            "-t", "30", "start")
        server = PostgresServer(port, folder)
        _create_user_and_database(server)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           cwd=folder, capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _stop_abandoned_servers(bindir: Path, run_as: list[str]) -> None:
    """Stop and remove the servers of test sessions that were killed before their clean-up."""
    from pipeline.files import process_gone

    for folder in Path(tempfile.gettempdir()).glob("churn-pg-test-*-*"):
        pid = folder.name.split("-")[3]
        if pid.isdigit() and process_gone(int(pid)):
            if (folder / "data" / "postmaster.pid").exists():
                subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate",
                                "-w", "stop"], cwd=tempfile.gettempdir(), capture_output=True, timeout=60)
            shutil.rmtree(folder, ignore_errors=True)


def _create_user_and_database(server: PostgresServer) -> None:
    from psycopg import sql

    with server.connect(dbname="postgres", user="postgres") as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(USER), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), sql.Identifier(USER)))
        # A session zone far from UTC: a timestamptz must arrive as UTC whatever the server's zone.
        conn.execute(sql.SQL("ALTER ROLE {} SET timezone = 'America/New_York'").format(sql.Identifier(USER)))


def _server_binaries() -> Path | None:
    """The folder with initdb, pg_ctl and postgres: Debian keeps them in
    /usr/lib/postgresql/<version>/bin, off the PATH."""
    candidates = [Path(found).resolve().parent for found in (shutil.which("initdb"), shutil.which("pg_ctl")) if found]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                         if p.parent.name.isdigit() else 0, reverse=True)
    return next((d for d in candidates if all((d / b).is_file() for b in ("initdb", "pg_ctl", "postgres"))), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
