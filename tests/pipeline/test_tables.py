"""Every rule of the data contract: bad input gives a clear error naming the table, the
column, the rule and example rows, and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_world


def load(folder: Path, quarantine: Path | None = None):
    return load_tables(folder, RUN_AT, quarantine)


def broken(tmp_path: Path, table: str, change) -> Path:
    world = tiny_world()
    world[table] = change(world[table].copy())
    return write_world(tmp_path / "data", world)


def test_valid_world_loads_with_typed_columns(tiny_dir):
    tables = load(tiny_dir)
    assert tables.row_counts == {"customers": 3, "transactions": 9, "interactions": 5,
                                 "support_tickets": 3, "surveys": 3, "subscriptions": 2}
    described = {row[0]: row[1] for row in tables.con.sql("DESCRIBE transactions").fetchall()}
    assert described["purchased_at"] == "TIMESTAMP" and described["amount"] == "DOUBLE"
    assert tables.query("SELECT name FROM customers WHERE customer_id = 'c1'")["name"][0] == "Müller, Jürgen"


def edit(column, row, value):
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame
    return change


@pytest.mark.parametrize(
    ("table", "change", "expected"),
    [
        ("transactions", edit("amount", 2, "abc"), "transactions.amount [unparseable number]: 1 row(s); e.g. row 3: amount='abc'"),
        ("transactions", edit("purchased_at", 0, "2025-13-45"), "transactions.purchased_at [unparseable timestamp]"),
        ("transactions", edit("customer_id", 1, None), "transactions.customer_id [missing value]"),
        ("transactions", edit("transaction_id", 1, "t1"), "transactions.transaction_id [duplicate key]: 1 row(s); e.g. transaction_id='t1' on rows [1, 2]"),
        ("transactions", edit("purchased_at", 3, "2206-01-01"), "transactions.purchased_at [in the future]"),
        ("transactions", edit("discount_amount", 0, -5), "transactions.discount_amount [below minimum 0]"),
        # money is summed exactly in 18 digits: larger amounts are refused, not overflowed
        ("transactions", edit("amount", 1, "2e11"), "transactions.amount [above maximum 1e+11]: 1 row(s); e.g. row 2: amount='2e11'"),
        ("transactions", edit("amount", 1, "-2e11"), "transactions.amount [below minimum -1e+11]"),
        ("surveys", edit("nps_score", 0, 11), "surveys.nps_score [above maximum 10]: 1 row(s); e.g. row 1: nps_score='11'"),
        ("surveys", edit("nps_score", 1, 7.5), "surveys.nps_score [not a whole number]"),
        ("support_tickets", edit("satisfaction", 1, "0"), "support_tickets.satisfaction [below minimum 1]"),
        ("support_tickets", edit("resolved_at", 1, "2025-01-01 00:00"), "support_tickets.resolved_at [resolved before opened]"),
        ("subscriptions", edit("ended_at", 0, "2024-01-01"), "subscriptions.ended_at [ended before started]"),
        ("customers", edit("customer_id", 2, "c1"), "customers.customer_id [duplicate key]"),
        ("customers", edit("is_loyalty_member", 0, "maybe"), "customers.is_loyalty_member [unparseable boolean]"),
        ("customers", lambda f: f.drop(columns="customer_id"), "customers.customer_id [missing column]"),
        ("surveys", lambda f: f.drop(columns="nps_score"), "surveys.nps_score [missing column]"),
    ],
)
def test_each_broken_rule_is_reported_and_nothing_is_written(tmp_path, table, change, expected):
    folder = broken(tmp_path, table, change)
    quarantine = tmp_path / "quarantine"
    with pytest.raises(DataError) as error:
        load(folder, quarantine)
    assert expected in str(error.value)
    assert "nothing was written" in str(error.value)
    assert not quarantine.exists()


def test_all_violations_are_reported_at_once(tmp_path):
    world = tiny_world()
    world["transactions"]["amount"] = world["transactions"]["amount"].astype(object)
    world["transactions"].loc[[0, 1, 2, 3, 4, 5, 6], "amount"] = "x"
    world["surveys"].loc[0, "nps_score"] = 42
    with pytest.raises(DataError) as error:
        load(write_world(tmp_path / "data", world))
    message = str(error.value)
    assert "transactions.amount [unparseable number]: 7 row(s)" in message
    amount_line = next(line for line in message.splitlines() if "transactions.amount" in line)
    assert amount_line.count("amount='x'") == 5  # at most five examples per rule
    assert "surveys.nps_score [above maximum 10]" in message


def test_soft_rules_quarantine_rows_with_reason_and_the_run_goes_on(tmp_path):
    world = tiny_world()
    extra = pd.DataFrame({"transaction_id": ["t98", "t99"], "customer_id": ["ghost", "c1"],
                          "purchased_at": ["2025-02-01", "2025-02-02"], "amount": [10.0, 0.0]})
    world["transactions"] = pd.concat([world["transactions"], extra], ignore_index=True)
    quarantine = tmp_path / "quarantine"
    tables = load(write_world(tmp_path / "data", world), quarantine)
    assert tables.quarantined["transactions"] == 2
    assert tables.query("SELECT count(*) AS n FROM transactions")["n"][0] == 9
    set_aside = pd.read_csv(quarantine / "transactions.csv")
    assert set(set_aside["quarantine_reason"]) == {"customer not in customers", "amount is zero"}
    assert set(set_aside["transaction_id"]) == {"t98", "t99"}


def test_a_clean_rerun_removes_a_stale_quarantine_file(tmp_path, tiny_dir):
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    (quarantine / "transactions.csv").write_text("old")
    load(tiny_dir, quarantine)
    assert not (quarantine / "transactions.csv").exists()


def test_optional_tables_may_be_absent(tmp_path):
    world = {k: v for k, v in tiny_world().items() if k in ("customers", "transactions")}
    tables = load(write_world(tmp_path / "data", world))
    assert tables.present == {"customers", "transactions"}


@pytest.mark.parametrize("missing", ["customers", "transactions"])
def test_missing_required_table(tmp_path, missing):
    world = {k: v for k, v in tiny_world().items() if k != missing}
    with pytest.raises(DataError, match=f"Required table\\(s\\) {missing} not found"):
        load(write_world(tmp_path / "data", world))


def test_empty_file_wrong_encoding_and_wrong_delimiter(tmp_path, tiny_dir):
    (tiny_dir / "surveys.csv").write_text("")
    with pytest.raises(DataError, match="Table surveys: file .* is empty"):
        load(tiny_dir)
    (tiny_dir / "surveys.csv").write_bytes("customer_id,responded_at,nps_score\nMüller,2025-01-01,3\n".encode("latin-1"))
    with pytest.raises(DataError, match="Table surveys: cannot read .*UTF-8"):
        load(tiny_dir)
    (tiny_dir / "surveys.csv").write_text("customer_id|responded_at|nps_score\nc1|2025-01-01|3\n")
    tables = load(tiny_dir)  # another delimiter is detected, not an error
    assert tables.row_counts["surveys"] == 1


def test_missing_data_folder_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="make data"):
        load(tmp_path / "nowhere")


def typed_parquet_world(folder: Path) -> Path:
    """The tiny world as Parquet files with the contract's types (as the generator writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_tables = load(write_world(folder / "csv", tiny_world()))
    for name in csv_tables.present:
        csv_tables.query(f"SELECT * FROM {name}").to_parquet(folder / f"{name}.parquet", index=False)
    csv_tables.close()
    return folder


def test_typed_parquet_loads_like_the_same_csv(tmp_path, tiny_dir):
    from_csv, from_parquet = load(tiny_dir), load(typed_parquet_world(tmp_path / "pq"))
    for name in from_csv.present:
        expected = from_csv.query(f"SELECT * FROM {name} ORDER BY ALL")
        pd.testing.assert_frame_equal(from_parquet.query(f"SELECT * FROM {name} ORDER BY ALL"), expected)


def test_parquet_violations_name_the_file_row(tmp_path):
    folder = typed_parquet_world(tmp_path / "pq")
    frame = pd.read_parquet(folder / "transactions.parquet")
    frame.loc[4, "discount_amount"] = -1.0  # typed column: checked without the raw text
    frame.loc[6, "transaction_id"] = frame.loc[2, "transaction_id"]
    frame.to_parquet(folder / "transactions.parquet", index=False)
    surveys = pd.read_parquet(folder / "surveys.parquet")
    surveys["nps_score"] = surveys["nps_score"].astype(str)  # stored as text: parsed and checked
    surveys.loc[1, "nps_score"] = "ten"
    surveys.to_parquet(folder / "surveys.parquet", index=False)
    with pytest.raises(DataError) as error:
        load(folder)
    message = str(error.value)
    assert "transactions.discount_amount [below minimum 0]: 1 row(s); e.g. row 5: discount_amount='-1.0'" in message
    assert "on rows [3, 7]" in message
    assert "surveys.nps_score [unparseable integer]: 1 row(s); e.g. row 2: nps_score='ten'" in message


def test_typed_parquet_is_read_in_place_and_quarantines_like_the_same_csv(tmp_path):
    """Parquet with the contract's types is not copied into the engine: the typed tables are
    views over the file, and only the rows set aside are stored; the quarantine is the same."""
    world = tiny_world()
    extra = pd.DataFrame({"transaction_id": ["t97", "t98", "t99"], "customer_id": ["ghost", "c1", "c2"],
                          "purchased_at": ["2025-02-01", "2025-02-02", "2025-02-03"], "amount": [10.0, 0.0, 0.0]})
    world["transactions"] = pd.concat([world["transactions"], extra], ignore_index=True)
    from_csv = load(write_world(tmp_path / "csv", world), tmp_path / "q_csv")
    folder = tmp_path / "pq"
    folder.mkdir()
    for name in from_csv.present:
        frame = from_csv.query(f"SELECT * FROM {name}")
        if name == "transactions":  # the rows set aside as well
            frame = from_csv.query("SELECT * EXCLUDE (source_row, quarantine_reason) FROM typed_transactions "
                                   "ORDER BY source_row")
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    from_parquet = load(folder, tmp_path / "q_pq")
    views = {row[0] for row in from_parquet.con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert "typed_transactions" in views
    assert from_parquet.quarantined == from_csv.quarantined and from_parquet.quarantined["transactions"] == 3
    assert (tmp_path / "q_pq" / "transactions.csv").read_text() == (tmp_path / "q_csv" / "transactions.csv").read_text()
    for name in from_csv.present:
        pd.testing.assert_frame_equal(from_parquet.query(f"SELECT * FROM {name} ORDER BY ALL"),
                                      from_csv.query(f"SELECT * FROM {name} ORDER BY ALL"))


def test_tables_read_in_place_do_not_change_when_the_file_does(tmp_path):
    """The view reads a copy in the engine's scratch folder: an export replacing the file
    during the run cannot put unchecked rows into the stages."""
    folder = typed_parquet_world(tmp_path / "pq")
    tables = load(folder)
    before = tables.query("SELECT * FROM transactions ORDER BY ALL")
    frame = pd.read_parquet(folder / "transactions.parquet")
    frame["amount"] = -1e12  # breaks the contract
    frame.to_parquet(folder / "transactions.parquet", index=False)
    pd.testing.assert_frame_equal(tables.query("SELECT * FROM transactions ORDER BY ALL"), before)
    tables.close()


def test_a_full_disk_while_copying_a_file_in_says_which_setting_and_leaves_nothing(tmp_path, monkeypatch):
    import errno
    import shutil

    folder = typed_parquet_world(tmp_path / "pq")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    with pytest.raises(DataError, match=r"The disk under .*engine \(data\.engine_dir.*\) is full"):
        load_tables(folder, RUN_AT, None, work_dir=tmp_path / "engine")
    assert list((tmp_path / "engine").iterdir()) == []


def test_a_damaged_page_of_a_column_no_rule_reads_is_found_by_validation(tmp_path):
    """A view over the file reads each column only when asked: validation still reads them all."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_world(tmp_path, tiny_world())
    (tmp_path / "transactions.csv").unlink()
    n = 20_000
    table = pa.table({
        "transaction_id": [f"t{i:06d}" for i in range(n)], "customer_id": ["c1"] * n,
        "purchased_at": pa.array(np.full(n, 1_740_000_000_000_000, dtype="int64")).cast(pa.timestamp("us")),
        "amount": np.ones(n), "category": [f"category {i}" for i in range(n)],
    })
    pq.write_table(table, tmp_path / "transactions.parquet", compression="snappy", use_dictionary=False)
    start = pq.ParquetFile(tmp_path / "transactions.parquet").metadata.row_group(0).column(4).data_page_offset
    damaged = bytearray((tmp_path / "transactions.parquet").read_bytes())
    for i in range(start + 100, start + 500):
        damaged[i] ^= 0x5A
    (tmp_path / "transactions.parquet").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"Table transactions: cannot read .*transactions\.parquet.*damaged"):
        load_tables(tmp_path, RUN_AT, None)


@pytest.mark.parametrize(("ids", "unique"), [
    (["a1", "a2", None, "b"], True), (["a1", "a2", "a2", "b"], False), (["b", "a"], False), ([], True)])
def test_keys_in_ascending_order_are_unique_without_counting(tmp_path, ids, unique):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.validation import ascending

    pq.write_table(pa.table({"key": pa.array(ids, pa.string())}), tmp_path / "keys.parquet", row_group_size=2)
    assert ascending(tmp_path / "keys.parquet", "key") is unique


def test_a_repeated_key_among_ascending_ones_is_reported_from_parquet(tmp_path):
    folder = typed_parquet_world(tmp_path / "pq")
    frame = pd.read_parquet(folder / "transactions.parquet")
    frame.loc[4, "transaction_id"] = frame.loc[3, "transaction_id"]  # t1 .. t4, t4, t6 ..
    frame.to_parquet(folder / "transactions.parquet", index=False)
    with pytest.raises(DataError, match=r"transactions\.transaction_id \[duplicate key\]: 1 row\(s\); "
                                        r"e\.g\. transaction_id='t4' on rows \[4, 5\]"):
        load(folder)


def test_closing_the_tables_removes_the_engine_scratch_folder(tiny_dir, tmp_path):
    tables = load_tables(tiny_dir, RUN_AT, None, work_dir=tmp_path / "engine")
    scratch = Path(tables.scratch.name)
    assert (scratch / "validated.duckdb").is_file()
    tables.close()
    assert not scratch.exists()


def test_running_out_of_engine_memory_says_which_setting_to_raise(tiny_dir):
    from pipeline.errors import EngineMemoryError

    tables = load_tables(tiny_dir, RUN_AT, None, memory_limit_gb=0.02)
    with pytest.raises(EngineMemoryError) as error:
        tables.query("SELECT list(x) FROM range(50000000) t(x)")  # a list cannot spill to disk
    assert "data.engine_memory_gb" in str(error.value) and "transactions (9 rows)" in str(error.value)
    assert error.value.exit_code == 6


def test_a_failed_validation_leaves_no_engine_files(tmp_path):
    folder = write_world(tmp_path / "data", tiny_world())
    (folder / "surveys.csv").write_text("")  # unreadable: stops validation half-way
    engine = tmp_path / "engine"
    with pytest.raises(DataError):
        load_tables(folder, RUN_AT, None, work_dir=engine)
    assert list(engine.iterdir()) == []


@pytest.mark.parametrize("table, column", [("transactions", "amount"), ("customers", "email")])
def test_a_column_twice_in_the_header_is_a_contract_error(tmp_path, table, column):
    world = tiny_world()
    write_world(tmp_path, world)
    frame = world[table].copy()
    frame.insert(len(frame.columns), column, frame[column], allow_duplicates=True)
    frame.to_csv(tmp_path / f"{table}.csv", index=False)
    with pytest.raises(DataError, match=rf"{table}\.{column} \[column appears more than once in the header\]"):
        load_tables(tmp_path, RUN_AT, None)


def test_a_repeated_parquet_column_is_a_contract_error(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_world(tmp_path, tiny_world())
    transactions = pd.read_csv(tmp_path / "transactions.csv")
    (tmp_path / "transactions.csv").unlink()
    arrays = [pa.array(transactions[c].astype(str)) for c in transactions.columns] + [pa.array(transactions["amount"])]
    pq.write_table(pa.Table.from_arrays(arrays, names=[*transactions.columns, "amount"]), tmp_path / "transactions.parquet")
    with pytest.raises(DataError, match=r"transactions\.amount \[column appears more than once"):
        load_tables(tmp_path, RUN_AT, None)


def test_a_damaged_parquet_file_is_named_not_a_traceback(tmp_path):
    """Flipped bytes inside a data page: the engine reads the footer fine and fails only when
    it decompresses the page ("Snappy decompression failure")."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_world(tmp_path, tiny_world())
    (tmp_path / "transactions.csv").unlink()
    n = 20_000
    table = pa.table({
        "transaction_id": [f"t{i}" for i in range(n)], "customer_id": ["c1"] * n,
        "purchased_at": pa.array(np.full(n, 1_740_000_000_000_000, dtype="int64")).cast(pa.timestamp("us")),
        "amount": np.linspace(1, 100, n),
    })
    pq.write_table(table, tmp_path / "transactions.parquet", compression="snappy")
    damaged = bytearray((tmp_path / "transactions.parquet").read_bytes())
    for i in range(2000, 2400):
        damaged[i] ^= 0x5A
    (tmp_path / "transactions.parquet").write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"Table transactions: cannot read .*transactions\.parquet.*damaged"):
        load_tables(tmp_path, RUN_AT, None)


@pytest.mark.parametrize("extra", ["AMOUNT", " amount"])
def test_a_repeated_column_in_another_case_or_with_blanks_is_caught(tmp_path, extra):
    """The engine matches names regardless of case and blanks: it would read AMOUNT_1."""
    world = tiny_world()
    write_world(tmp_path, world)
    frame = world["transactions"].copy()
    frame[extra] = frame["amount"]
    frame.to_csv(tmp_path / "transactions.csv", index=False)
    with pytest.raises(DataError, match=r"transactions\.amount / AMOUNT|transactions\.amount \[column appears"):
        load_tables(tmp_path, RUN_AT, None)


def test_a_truncated_parquet_file_is_named(tmp_path):
    write_world(tmp_path, tiny_world())
    customers = pd.read_csv(tmp_path / "customers.csv")
    (tmp_path / "customers.csv").unlink()
    customers.astype(str).to_parquet(tmp_path / "customers.parquet")
    whole = (tmp_path / "customers.parquet").read_bytes()
    (tmp_path / "customers.parquet").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"Table customers: cannot read .*customers\.parquet"):
        load_tables(tmp_path, RUN_AT, None)


def test_a_damaged_page_the_engine_does_not_name_is_still_pinned_to_its_file(tmp_path, monkeypatch):
    """Some damage surfaces as an engine error without the file's name in it ("don't know what
    type"); the table being read is then the one named."""
    import duckdb

    import pipeline.tables as tables_module

    write_world(tmp_path, tiny_world())
    real = tables_module.check_rules

    def failing(con, table, *args, **kwargs):
        if table.name == "surveys":
            raise duckdb.InvalidInputException("don't know what type: ")
        return real(con, table, *args, **kwargs)

    monkeypatch.setattr(tables_module, "check_rules", failing)
    with pytest.raises(DataError, match=r"Table surveys: cannot read .*surveys\.csv: .*don't know what type"):
        load_tables(tmp_path, RUN_AT, None)


def test_the_engine_folder_of_a_killed_run_is_removed_by_the_next_run(tmp_path):
    import subprocess
    import sys

    engines = tmp_path / "engines"
    write_world(tmp_path / "data", tiny_world())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = engines / f"churn-engine-{int(dead.stdout)}-x1y2z3"
    (abandoned / "spill").mkdir(parents=True)
    (abandoned / "validated.duckdb").write_bytes(b"left by a SIGKILLed run")
    alive = engines / f"churn-engine-{os.getppid()}-a1b2c3"  # a process that runs: kept
    alive.mkdir()
    tables = load_tables(tmp_path / "data", RUN_AT, None, work_dir=engines)
    assert not abandoned.exists() and alive.exists()
    tables.close()


def test_the_blank_test_trims_only_where_it_may_matter_and_agrees_with_trim():
    import duckdb

    from pipeline.validation import _blank

    values = [None, "", " ", "\t", "\n", "\u3000", "\u3000a", "\u00a0", "a", " a", "a ", "~", "\x7f", "é", "!", "\x00"]
    con = duckdb.connect()
    con.execute("CREATE TABLE v (x VARCHAR)")
    con.executemany("INSERT INTO v VALUES (?)", [[x] for x in values])
    rows = con.execute(f"SELECT x, nullif(trim(x), '') IS NULL, {_blank('x')} FROM v").fetchall()
    assert [fast for _, _, fast in rows] == [plain for _, plain, _ in rows]
    assert sum(fast for _, _, fast in rows) == 5  # NULL, '', ' ', and the two spaces trim removes


def test_tables_read_in_place_can_be_stored_in_the_engine_for_a_stack(tmp_path):
    tables = load(typed_parquet_world(tmp_path / "pq"))
    before = {name: tables.query(f"SELECT * FROM {name} ORDER BY ALL") for name in tables.present}
    assert tables.in_place == tables.present
    tables.store()
    assert tables.in_place == frozenset()
    stored = {row[0] for row in tables.con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {f"stored_{name}" for name in tables.present} <= stored
    for name, frame in before.items():
        pd.testing.assert_frame_equal(tables.query(f"SELECT * FROM {name} ORDER BY ALL"), frame)
    tables.close()


def _limit_as_set(gb: float) -> str:
    """DuckDB's own display of a memory limit of `gb` (it shows GiB, rounded)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{gb:.3f}GB'")
    return con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def test_the_engine_shares_its_budget_with_a_frame_python_holds(tiny_dir, tmp_path):
    from pipeline.tables import SMALLEST_ENGINE_GB

    tables = load_tables(tiny_dir, RUN_AT, None, memory_limit_gb=3.0, work_dir=tmp_path / "engine")

    def limit() -> str:
        return tables.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]

    assert limit() == _limit_as_set(3.0)
    with tables.memory_shared_with(0.75):
        assert limit() == _limit_as_set(2.25)
    assert limit() == _limit_as_set(3.0)
    with tables.memory_shared_with(2.9):  # never starved below the floor
        assert limit() == _limit_as_set(SMALLEST_ENGINE_GB)
    with pytest.raises(RuntimeError), tables.memory_shared_with(1.0):
        raise RuntimeError("a stage failed")
    assert limit() == _limit_as_set(3.0)  # restored whatever happened inside
    tables.close()


def test_feature_stages_run_within_the_budget_less_the_frame_they_fill(tiny_dir, tmp_path, monkeypatch):
    """build_features shares the engine's budget with the feature columns it preallocates,
    from before it allocates them and for every stage query it runs."""
    from contextlib import contextmanager

    from features import frame as frame_module
    from features.feature import FEATURE_DTYPE
    from features.frame import build_features, preallocated
    from features.population import build_active_spine
    from pipeline.config import ChurnConfig, FeaturesConfig

    tables = load_tables(tiny_dir, RUN_AT, None, work_dir=tmp_path / "engine")
    spine = build_active_spine(tables, [pd.Timestamp("2025-06-01").date()], ChurnConfig())
    held, inside, queries = [], [], []
    shared, query_with = tables.memory_shared_with, tables.query_with

    @contextmanager
    def noting_what_is_held(gb):
        held.append(gb)
        with shared(gb):
            inside.append(gb)
            yield
            inside.pop()

    def noting_the_budget(*args, **kwargs):
        queries.append(bool(inside))
        return query_with(*args, **kwargs)

    allocated = []

    def noting_when_allocated(names, rows):
        allocated.append(bool(inside))
        return preallocated(names, rows)

    tables.memory_shared_with, tables.query_with = noting_what_is_held, noting_the_budget
    monkeypatch.setattr(frame_module, "preallocated", noting_when_allocated)
    frame = build_features(tables, spine, FeaturesConfig())
    numeric = sum(1 for c in frame.columns if frame[c].dtype == FEATURE_DTYPE)
    assert held == [pytest.approx(len(frame) * numeric * 4 / 2**30)] and held[0] > 0
    assert queries and all(queries)  # every stage query ran while the frame's size was set aside
    assert allocated == [True]  # the engine's share was lowered before the columns took the memory
    tables.close()
