"""Logging with timestamps, and a `stage` context manager that logs each step's duration.

Nightly job logs must stay readable, so there are no progress bars in log files: long
loops call `progress(...)`, which draws a bar only when stderr is a terminal.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("churn")


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("churn", "pipeline", "features", "models"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.INFO)


@contextmanager
def stage(name: str) -> Iterator[dict]:
    """Log the start and end of a step with its duration. The body may put counts into the
    yielded dict (e.g. info["rows"] = 1234) and they are logged at the end."""
    info: dict = {}
    started = time.perf_counter()
    log.info("%s ...", name)
    yield info
    took = time.perf_counter() - started
    details = ", ".join(f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}" for k, v in info.items())
    log.info("%s done in %.1fs%s", name, took, f" ({details})" if details else "")


def progress(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """Yield items; draw a progress bar on a terminal, otherwise log a line at every tenth
    of the way (a nightly log stays short)."""
    interactive = sys.stderr.isatty()
    every = max(1, total // 10)
    for done, item in enumerate(items, start=1):
        yield item
        if interactive:
            filled = int(30 * done / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif done % every == 0 or done == total:
            log.info("%s %d/%d", label, done, total)
