"""Safe outputs: the crash-safe swap of a folder (proved by really killing a writer at each
step), the recovery of what a killed writer left, refusing a file or a link where a folder
belongs, and the OS run lock between real processes."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline import files
from pipeline.errors import OutputError, RunLockedError
from pipeline.files import atomic_directory, run_lock
from tests.conftest import hold_lock_in_child

ROOT = Path(__file__).resolve().parents[2]
OLD = {"at_risk.csv": "customer_id\nold-1\nold-2\n", "manifest.json": '{"list": "old"}'}
NEW = {"at_risk.csv": "customer_id\nnew-1\nnew-2\nnew-3\n", "manifest.json": '{"list": "new"}'}
THIRD = {"at_risk.csv": "customer_id\nthird\n", "manifest.json": '{"list": "third"}'}

# A child process that publishes NEW over OLD under the run lock, exactly as a scoring run
# does, and SIGKILLs itself at one step of the swap. It wraps the real primitives (the
# exchange, os.rename, os.unlink) to die right before or after them: nothing in the code
# under test knows it is being tested, and a SIGKILL runs no cleanup at all.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from pipeline import files

    target, die_at, swap = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    new = {"at_risk.csv": "customer_id\\nnew-1\\nnew-2\\nnew-3\\n", "manifest.json": '{"list": "new"}'}
    calls = {"rename": 0, "unlink": 0}

    def event(name):
        if name == die_at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_exchange, real_rename, real_unlink = files._exchange, os.rename, os.unlink

    def exchange(a, b):
        event("before-swap")
        done = real_exchange(a, b)
        event("after-exchange")
        return done

    def rename(a, b, *args, **kwargs):
        if Path(a).parent == target.parent:  # only the swap's renames
            calls["rename"] += 1
            event(f"before-rename-{calls['rename']}")
            real_rename(a, b, *args, **kwargs)
            event(f"after-rename-{calls['rename']}")
        else:
            real_rename(a, b, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        calls["unlink"] += 1
        event("cleaning")  # one file of the replaced folder is gone, the rest not yet

    files._exchange = exchange if swap == "exchange" else (lambda a, b: event("before-swap") or False)
    os.rename, os.unlink = rename, unlink
    with files.run_lock(target.parent), files.atomic_directory(target) as staging:
        for name, text in new.items():
            (staging / name).write_text(text)
            event("writing")  # one file of the new list is written, the other not yet
    print("finished")
""")

# Each step of each swap, and what the published path must hold right after a kill there.
# Only the two-rename swap (where the system has no atomic exchange) has a moment with no
# list at the path: between its renames. The next run restores the old list from its
# `.old-<pid>` folder.
STEPS = [
    ("exchange", "writing", OLD), ("exchange", "before-swap", OLD), ("exchange", "after-exchange", NEW),
    ("exchange", "cleaning", NEW),
    ("renames", "writing", OLD), ("renames", "before-swap", OLD), ("renames", "after-rename-1", None),
    ("renames", "after-rename-2", NEW), ("renames", "cleaning", NEW),
]


def write_list(folder: Path, content: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in content.items():
        (folder / name).write_text(text)


def read_list(folder: Path) -> dict[str, str] | None:
    if not folder.exists():
        return None
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def run_child(target: Path, die_at: str, swap: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", CHILD, str(target), die_at, swap], capture_output=True,
                          text=True, env=env, timeout=60)


@pytest.mark.parametrize(("swap", "die_at", "published"), STEPS, ids=[f"{s}-{d}" for s, d, _ in STEPS])
def test_a_publisher_killed_at_any_step_leaves_a_whole_list_and_the_next_run_recovers(tmp_path, swap, die_at,
                                                                                       published):
    if swap == "exchange" and files._exchange_call() is None:
        pytest.skip("this system has no atomic exchange of two names (only the two-rename swap runs here)")
    out = tmp_path / "at_risk"
    target = out / "2026-01-01"
    write_list(target, OLD)

    child = run_child(target, die_at, swap)

    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert read_list(target) == published
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith(".2026-01-01."))
    assert leftovers, "the kill left nothing to recover, so this step was not tested"
    if die_at == "cleaning":  # a half-removed old list is never left under a name that gets restored
        assert not list(out.glob(".2026-01-01.old-*"))
    if published is None:  # between the two renames: the old list waits, whole, in its .old- folder
        (old,) = out.glob(".2026-01-01.old-*")
        assert read_list(old) == OLD

    # The next run recovers first, under the lock, even when it then fails itself.
    with pytest.raises(RuntimeError, match="the next run fails too"), run_lock(out), atomic_directory(target):
        raise RuntimeError("the next run fails too")
    assert read_list(target) == (published or OLD)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "2026-01-01"]

    with run_lock(out), atomic_directory(target) as staging:
        write_list(staging, THIRD)
    assert read_list(target) == THIRD
    assert sorted(p.name for p in out.iterdir()) == [".lock", "2026-01-01"]


def test_the_child_publishes_whole_when_nothing_kills_it(tmp_path):
    """The harness itself: with no step to die at, the child replaces OLD with NEW and cleans up."""
    target = tmp_path / "at_risk" / "2026-01-01"
    write_list(target, OLD)
    child = run_child(target, "nowhere", "renames")
    assert child.returncode == 0 and "finished" in child.stdout, child.stderr
    assert read_list(target) == NEW
    assert sorted(p.name for p in target.parent.iterdir()) == [".lock", "2026-01-01"]


def test_leftovers_of_a_live_writer_are_kept_and_removed_once_it_is_gone(tmp_path):
    target = tmp_path / "2026-01-01"
    write_list(target, OLD)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        busy = tmp_path / f".2026-01-01.staging-{sleeper.pid}-abcd1234"
        write_list(busy, NEW)
        with atomic_directory(target) as staging:
            write_list(staging, THIRD)
        assert read_list(busy) == NEW  # another process may still be writing it
    finally:
        sleeper.kill()
        sleeper.wait()
    with atomic_directory(target) as staging:
        write_list(staging, THIRD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-01-01"]


def test_a_failed_second_rename_puts_the_old_list_back(tmp_path, monkeypatch):
    """Where the system has no atomic exchange, the swap renames twice. A failure of the second
    rename (EIO here) cannot be produced on a healthy disk, so it is simulated at os.rename."""
    target = tmp_path / "2026-01-01"
    write_list(target, OLD)
    real_rename = os.rename

    def rename(a, b):
        if Path(a).name.startswith(".2026-01-01.staging-"):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(a))
        real_rename(a, b)

    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"), atomic_directory(target) as staging:
        write_list(staging, NEW)
    assert read_list(target) == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-01-01"]


def test_a_file_or_a_link_where_the_folder_belongs_is_refused_and_left_alone(tmp_path):
    elsewhere = tmp_path / "shared"
    write_list(elsewhere, OLD)
    link = tmp_path / "2026-01-01"
    link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(OutputError, match="is a symbolic link") as refused, atomic_directory(link) as staging:
        write_list(staging, NEW)
    assert "\n" not in str(refused.value)
    assert link.is_symlink() and read_list(elsewhere) == OLD

    link.unlink()
    link.write_text("my notes")
    with pytest.raises(OutputError, match="is a file"), atomic_directory(link) as staging:
        write_list(staging, NEW)
    assert link.read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-01-01", "shared"]


# --- the run lock ------------------------------------------------------------------------------


def test_a_lock_held_by_another_process_stops_at_once_and_one_left_by_a_killed_process_is_taken_over(tmp_path):
    child = hold_lock_in_child(tmp_path)
    try:
        began = time.perf_counter()
        with pytest.raises(RunLockedError, match="Another scoring run holds") as stopped, run_lock(tmp_path):
            pass
        assert time.perf_counter() - began < 2  # no waiting
        assert f"process {child.pid}" in str(stopped.value) and str(tmp_path) in str(stopped.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with run_lock(tmp_path):  # the OS released the dead holder's lock
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def test_the_lock_is_joined_not_taken_again_within_one_process(tmp_path):
    with run_lock(tmp_path):
        with run_lock(tmp_path):  # e.g. publishing inside a scoring run that holds the lock
            pass
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; from pipeline.files import run_lock\n"
             "with run_lock(Path(sys.argv[1])): pass", str(tmp_path)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert child.returncode != 0 and "RunLockedError" in child.stderr  # still held after the inner exit
    with run_lock(tmp_path):
        pass


def test_a_folder_that_cannot_hold_the_lock_says_so(tmp_path):
    output_dir = tmp_path / "at_risk"
    output_dir.write_text("not a folder")
    with pytest.raises(OutputError, match="is a file where a folder belongs") as refused, run_lock(output_dir):
        pass
    assert "scoring.output_dir" in str(refused.value) and output_dir.read_text() == "not a folder"


def test_staging_left_by_the_earlier_code_is_removed_once_a_day_old(tmp_path):
    """Staging folders of the code before pid-named staging were `.<date>.<8 random characters>`."""
    target = tmp_path / "2026-01-01"
    write_list(target, OLD)
    stale, fresh = tmp_path / ".2026-01-01.k3j_9x2a", tmp_path / ".2026-01-01.q0w9e8r7"
    write_list(stale, NEW)
    write_list(fresh, NEW)
    day_and_a_bit = files.UNOWNED_STAGING_AGE_S + 60
    os.utime(stale, (os.stat(stale).st_atime - day_and_a_bit, os.stat(stale).st_mtime - day_and_a_bit))
    with atomic_directory(target) as staging:
        write_list(staging, THIRD)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".2026-01-01.q0w9e8r7", "2026-01-01"]
    assert read_list(target) == THIRD
