"""The nightly job's behaviour: output options, dry runs, one run at a time (real processes),
atomic publishing and its recovery, and the output errors (exit 7)."""

from __future__ import annotations

import builtins
import datetime as dt
import errno
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.at_risk import publish
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.errors import OutputError, RunLockedError
from pipeline.score import run_scoring
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, hold_lock_in_child, write_config

AS_OF = dt.date(2026, 1, 1)
ROOT = Path(__file__).resolve().parents[2]


def scoring_setup(demo_run: Path, folder: Path, **scoring):
    """The demo run's data and models, with another output folder and scoring options."""
    config = write_config(folder, data={"path": str(demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(folder / "out"), **scoring})
    cfg = load_config(config)
    return cfg, load_tables(cfg.data.path, RUN_AT, None)


def test_german_excel_csv_reads_back_identically(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path, csv={"delimiter": ";", "decimal": ",", "excel_bom": True})
    run_scoring(tables, cfg, AS_OF)
    raw = (tmp_path / "out" / "2026-01-01" / "at_risk.csv").read_bytes()
    assert raw.startswith("\ufeff".encode()) and b";" in raw.splitlines()[0]
    german = pd.read_csv(tmp_path / "out" / "2026-01-01" / "at_risk.csv", sep=";", decimal=",",
                         encoding="utf-8-sig", dtype={"customer_id": str})
    default = pd.read_csv(demo_run / "at_risk" / "2026-01-01" / "at_risk.csv", dtype={"customer_id": str})
    pd.testing.assert_frame_equal(german, default)
    assert {"Müller", "\n"} & set("".join(german["name"])) or german["name"].str.contains("ü").any()


def test_names_with_commas_quotes_and_umlauts_survive_a_round_trip(demo_run):
    listing = demo_run / "at_risk" / "2026-01-01"
    from_csv = pd.read_csv(listing / "at_risk.csv", dtype={"customer_id": str})
    from_parquet = pd.read_parquet(listing / "at_risk.parquet")
    assert from_csv["name"].tolist() == from_parquet["name"].tolist()
    tricky = from_csv["name"][from_csv["name"].str.contains(r"[,\"'äöüéè]", regex=True)]
    assert len(tricky) > 10


def test_top_n_and_selected_tiers(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path, top_n=25, only_tiers=["high"])
    manifest = run_scoring(tables, cfg, AS_OF)
    listed = pd.read_csv(tmp_path / "out" / "2026-01-01" / "at_risk.csv")
    assert len(listed) == 25 == manifest["customers_listed"] and set(listed["risk_tier"]) == {"high"}
    assert manifest["customers_scored"] > 25


def test_dry_run_writes_nothing(demo_run, tmp_path):
    cfg, tables = scoring_setup(demo_run, tmp_path)
    manifest = run_scoring(tables, cfg, AS_OF, dry_run=True)
    assert manifest["customers_scored"] > 0 and not (tmp_path / "out").exists()


def test_a_failed_run_leaves_the_previous_list_untouched(demo_run, tmp_path, monkeypatch):
    cfg, tables = scoring_setup(demo_run, tmp_path)
    run_scoring(tables, cfg, AS_OF)
    listing = tmp_path / "out" / "2026-01-01"
    before = {p.name: p.read_bytes() for p in listing.iterdir()}

    def crash_midway(at_risk, folder, scoring_cfg):
        (folder / "at_risk.csv").write_text("customer_id\nhalf-writ")
        raise RuntimeError("a bug halfway through the files")

    monkeypatch.setattr(publish, "write_at_risk_files", crash_midway)
    with pytest.raises(RuntimeError, match="a bug halfway"):
        run_scoring(tables, cfg, AS_OF)
    assert {p.name: p.read_bytes() for p in listing.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lock", "2026-01-01", "latest"]  # no staging left


# --- one run at a time, for the whole run ------------------------------------------------------


def lock_is_held_elsewhere(folder: Path) -> bool:
    """Ask a fresh process whether it could take the run lock of folder right now."""
    code = ("import sys; from pathlib import Path; from pipeline.files import run_lock\n"
            "from pipeline.errors import RunLockedError\n"
            "try:\n    with run_lock(Path(sys.argv[1])): print('free')\n"
            "except RunLockedError: print('held')")
    probe = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return probe.stdout.strip() == "held"


def test_a_second_score_run_stops_at_once_before_reading_anything(tmp_path):
    """Another process holds the lock: `churn score` exits 5 at once, naming the folder and
    the holder, and before it reads the input (the data folder here does not even exist, which
    would otherwise be exit 3)."""
    out = tmp_path / "out"
    config = write_config(tmp_path, data={"path": str(tmp_path / "no-such-data")}, scoring={"output_dir": str(out)})
    child = hold_lock_in_child(out)
    try:
        began = time.perf_counter()
        result = CliRunner().invoke(app, ["score", "--config", str(config), "--as-of", "2026-01-01"])
        assert time.perf_counter() - began < 5
    finally:
        child.kill()
        child.wait()
    assert result.exit_code == RunLockedError.exit_code == 5, result.output
    assert f"Another scoring run holds {out / '.lock'} (process {child.pid}" in result.output
    assert "Traceback" not in result.output


def test_the_score_command_holds_the_lock_from_validation_to_publishing(demo_run, tmp_path, monkeypatch):
    """While the real run validates and while it scores and publishes, another process
    cannot take the lock; publishing inside the run joins its hold (taking the lock a second
    time would stop the run itself with exit 5)."""
    import pipeline.score
    import pipeline.tables

    out = tmp_path / "out"
    config = write_config(tmp_path, data={"path": str(demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"}, scoring={"output_dir": str(out)})
    seen = {}
    real_load, real_score = pipeline.tables.load_tables, pipeline.score.run_scoring

    def load_tables(*args, **kwargs):
        seen["validating"] = lock_is_held_elsewhere(out)
        return real_load(*args, **kwargs)

    def run_scoring(*args, **kwargs):
        seen["scoring"] = lock_is_held_elsewhere(out)
        return real_score(*args, **kwargs)

    monkeypatch.setattr(pipeline.tables, "load_tables", load_tables)
    monkeypatch.setattr(pipeline.score, "run_scoring", run_scoring)
    result = CliRunner().invoke(app, ["score", "--config", str(config), "--as-of", "2026-01-01"])
    assert result.exit_code == 0, result.output
    assert seen == {"validating": True, "scoring": True}
    assert (out / "2026-01-01" / "at_risk.csv").is_file() and not lock_is_held_elsewhere(out)


def test_the_next_run_recovers_what_a_killed_publish_left(demo_run, tmp_path):
    """A run killed between the two renames of a swap left no list at the date path, the
    previous one in `.2026-01-01.old-<pid>` and an unfinished staging folder (pid of a process
    that is gone). The next real run publishes whole and removes both."""
    out = tmp_path / "out"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    shutil.copytree(demo_run / "at_risk" / "2026-01-01", out / f".2026-01-01.old-{dead}")
    (out / f".2026-01-01.staging-{dead}-x1y2z3").mkdir()
    (out / f".2026-01-01.staging-{dead}-x1y2z3" / "at_risk.csv").write_text("customer_id\nhalf")
    cfg, tables = scoring_setup(demo_run, tmp_path)
    run_scoring(tables, cfg, AS_OF)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "2026-01-01", "latest"]
    assert (out / "2026-01-01" / "at_risk.csv").read_bytes() == (
        demo_run / "at_risk" / "2026-01-01" / "at_risk.csv").read_bytes()


# --- output errors: a message, exit 7, and the previous list as it was --------------------------


def previous_list(demo_run: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """The output folder of an earlier night: a real list for 2026-01-01 (the demo run's)."""
    listing = tmp_path / "out" / "2026-01-01"
    shutil.copytree(demo_run / "at_risk" / "2026-01-01", listing)
    return listing, {p.name: p.read_bytes() for p in listing.iterdir()}


def score_cli(demo_run: Path, tmp_path: Path, output_dir: Path | None = None):
    config = write_config(tmp_path, data={"path": str(demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(output_dir or tmp_path / "out")})
    return CliRunner().invoke(app, ["score", "--config", str(config), "--as-of", "2026-01-01"])


def assert_output_error(result, *phrases: str) -> None:
    assert result.exit_code == OutputError.exit_code == 7, result.output
    message = result.output.strip().splitlines()[-1]
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in message, (phrase, message)


class FillingDisk(io.RawIOBase):
    """A file on a disk with `room` bytes left: write(2) writes what fits, then fails with
    ENOSPC, as a real full disk does."""

    def __init__(self, path, room: int):
        self.file, self.room = io.FileIO(path, "w"), room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.room == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.file.write(bytes(data[:self.room]))
        self.room -= written
        return written

    def close(self) -> None:
        self.file.close()
        super().close()


def test_a_full_disk_while_writing_the_list(demo_run, tmp_path, monkeypatch):
    """A disk that fills up while the list is written cannot be produced here without root
    mounts, so it is simulated at the lowest level Python writes through: every file opened for
    writing under the output folder gets a raw file whose write(2) fails with ENOSPC after
    4 KB (`FillingDisk`)."""
    listing, before = previous_list(demo_run, tmp_path)
    out = tmp_path / "out"
    real_open = builtins.open

    def open_on_a_full_disk(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, *args, **kw):
        if isinstance(file, (str, os.PathLike)) and Path(file).is_relative_to(out) and set(mode) & set("wax"):
            buffered = io.BufferedWriter(FillingDisk(file, room=4096))
            return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=encoding or "utf-8",
                                                                 errors=errors, newline=newline)
        return real_open(file, mode, buffering, encoding, errors, newline, *args, **kw)

    monkeypatch.setattr(builtins, "open", open_on_a_full_disk)
    result = score_cli(demo_run, tmp_path)
    monkeypatch.undo()
    assert_output_error(result, f"Could not write the at-risk list to {listing}", "disk (or the user's quota) is "
                        "full", "ENOSPC", "scoring.output_dir", "Nothing was replaced")
    assert {p.name: p.read_bytes() for p in listing.iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "2026-01-01"]


@pytest.mark.parametrize(("code", "phrase"), [(errno.EROFS, "the file system is read-only"),
                                              (errno.EACCES, "may not write in")])
def test_a_read_only_output_folder(demo_run, tmp_path, monkeypatch, code, phrase):
    """A read-only mount (EROFS) or a folder another user owns (EACCES) cannot be produced
    here: the tests run as root, who may write anywhere, and cannot mount. So the OS calls
    that create, open for writing, rename or remove something under the output folder raise
    that error, as the kernel would."""
    listing, before = previous_list(demo_run, tmp_path)
    out = tmp_path / "out"
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def under_out(*paths) -> bool:
        return any(isinstance(p, (str, os.PathLike)) and Path(p).is_absolute() and Path(p).is_relative_to(out)
                   for p in paths)

    def refusing(real, is_write):
        def call(*args, **kwargs):
            if kwargs.get("dir_fd") is None and is_write(*args) and under_out(*args[:2]):
                raise OSError(code, os.strerror(code), str(args[0]))
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(os, "open", refusing(os.open, lambda path, flags, *rest: flags & writes))
    for name in ("mkdir", "rename", "replace", "unlink", "rmdir"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name), lambda *args: True))
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", refusing(real_open, lambda file, mode="r", *rest: set(mode) & set("wax+")))
    result = score_cli(demo_run, tmp_path)
    monkeypatch.undo()
    assert_output_error(result, f"Could not take the run lock {out / '.lock'}", phrase, errno.errorcode[code],
                        "scoring.output_dir")
    assert {p.name: p.read_bytes() for p in listing.iterdir()} == before
    assert sorted(p.name for p in out.iterdir()) == ["2026-01-01"]


def test_an_output_folder_that_is_a_file(demo_run, tmp_path):
    output_dir = tmp_path / "out"
    output_dir.write_text("my spreadsheet, not a folder")
    result = score_cli(demo_run, tmp_path)
    assert_output_error(result, str(output_dir), "is a file where a folder belongs", "scoring.output_dir")
    assert output_dir.read_text() == "my spreadsheet, not a folder"


def test_a_date_path_that_is_a_file(demo_run, tmp_path):
    date_path = tmp_path / "out" / "2026-01-01"
    date_path.parent.mkdir()
    date_path.write_text("someone's file")
    result = score_cli(demo_run, tmp_path)
    assert_output_error(result, f"{date_path} is a file", "left as it is")
    assert date_path.read_text() == "someone's file"
    assert sorted(p.name for p in date_path.parent.iterdir()) == [".lock", "2026-01-01"]


def test_a_date_folder_that_is_a_symlink_is_refused_not_replaced(demo_run, tmp_path):
    """Before: the swap renamed the link aside, published, then crashed on removing the link
    (a traceback, and the user's link gone). Now: refused with a message, nothing changed."""
    shared, before = previous_list(demo_run, tmp_path / "share")
    link = tmp_path / "out" / "2026-01-01"
    link.parent.mkdir()
    link.symlink_to(shared, target_is_directory=True)
    result = score_cli(demo_run, tmp_path)
    assert_output_error(result, f"{link} is a symbolic link (to {shared})", "does not replace a link")
    assert link.is_symlink() and link.readlink() == shared
    assert {p.name: p.read_bytes() for p in shared.iterdir()} == before
    assert sorted(p.name for p in link.parent.iterdir()) == [".lock", "2026-01-01"]
