"""Writing outputs safely: files and folders that nobody ever sees half of (written beside
the target, then renamed into place: a rename within one filesystem is atomic), and the
lock that lets one nightly run at a time write into an output folder.

The lock file holds the owner's pid. A lock whose process no longer runs on this host is
stale (a crashed run) and is taken over with a warning; a live one makes the second run
stop with a clear message."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from pipeline.errors import RunLockedError

log = logging.getLogger(__name__)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; move it onto `target` if the body succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o644)  # mkstemp makes it private; the published file is for readers
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_csv(frame: pd.DataFrame, target: Path, **to_csv_kwargs) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, **to_csv_kwargs)


def atomic_write_text(text: str, target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory beside `target`; when the body succeeds it
    replaces `target` as a whole (the old one is removed only after the swap)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        staging.chmod(0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def file_sha256(path: Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(lock: Path) -> bool:
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return True  # unreadable or half-written: its writer died
    return owner.get("host") == socket.gethostname() and not _process_alive(int(owner.get("pid", -1)))


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / ".lock"
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if not _is_stale(lock):
                raise RunLockedError(
                    f"Another scoring run holds {lock} ({lock.read_text().strip()}). Wait for it to "
                    "finish; if no such run exists, delete the lock file."
                ) from None
            log.warning("removing stale lock %s left by a crashed run", lock)
            lock.unlink(missing_ok=True)
    else:
        raise RunLockedError(f"Could not take the lock {lock}; another run raced for it. Retry.")
    try:
        os.write(fd, owner.encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)
