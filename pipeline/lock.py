"""One nightly run at a time per output folder: a lock file holding the owner's pid.

A lock whose process no longer runs on this host is stale (a crashed run) and is taken
over with a warning; a live one makes the second run stop with a clear message."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import RunLockedError

log = logging.getLogger(__name__)


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
