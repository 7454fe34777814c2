"""Logging with timestamps, and a `stage` context manager that logs each step's duration.

Nightly job logs must stay readable, so there are no progress bars in log files: long
loops call `progress(...)`, which draws a bar only when stderr is a terminal and otherwise
logs, at every tenth of the way, how much is done, how fast and how long the rest will take.

Credentials never reach a log: every record passes a filter that masks the user and password
of any `scheme://user:pass@host` (`scheme://***@host`), in its message, arguments and
traceback, and a traceback of a bug is printed masked too.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("churn")
# The user and password of a URI: scheme://user:pass@ (the password may hold an unescaped '@').
CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@:'\"]+(?::[^/\s'\"]*)?@")


def mask_credentials(text: str) -> str:
    """`https://user:secret@host/x` -> `https://***@host/x`, wherever it appears in the text."""
    return CREDENTIALS.sub(r"\1***@", text)


def mask_secrets(value):
    """A logged structure (dicts, lists, strings) with the credentials of every URI masked."""
    if isinstance(value, str):
        return mask_credentials(value)
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_secrets(v) for v in value)
    return value


class MaskCredentials(logging.Filter):
    """Masks URI credentials in a record's message, arguments, traceback and stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed format: logging reports it itself
            return True
        record.msg, record.args = mask_credentials(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_credentials(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_credentials(record.stack_info)
        return True


def adopt_loggers(*names: str) -> None:
    """Send libraries' own loggers (MLflow and Optuna configure handlers of their own) through
    the root handler, so their lines get the same format and the same masking."""
    for name in names:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


def _masked_excepthook(kind, value, tb) -> None:
    sys.stderr.write(mask_credentials("".join(traceback.format_exception(kind, value, tb))))


def setup_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskCredentials())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    sys.excepthook = _masked_excepthook
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


def progress(items: Iterable[T], total: int, label: str, unit: str = "items",
             rows: Callable[[T], int] | None = None, clock: Callable[[], float] = time.perf_counter) -> Iterator[T]:
    """Yield `total` items of a long step, and say how far it got after each is done: on a
    terminal a bar, otherwise a log line at every tenth of the way (a nightly log stays
    short), e.g. `features: 3/10 batches done, 45,000 rows/s, about 2m05s left`. `rows`
    (an item's rows; default: the items themselves are counted) makes the rate rows per
    second; the time left supposes the items to come take as long as those done. A step of
    one item says nothing: its start and end are the surrounding stage's."""
    if total <= 1:
        yield from items
        return
    interactive = sys.stderr.isatty()
    every = max(1, total // 10)
    started, counted = clock(), 0
    for done, item in enumerate(items, start=1):
        yield item
        counted += rows(item) if rows else 1
        status = progress_status(done, total, unit, counted, "rows" if rows else unit, clock() - started)
        if interactive:
            filled = int(30 * done / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (30 - filled)}] {status}\x1b[K")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif done % every == 0 or done == total:
            log.info("%s: %s", label, status)


def progress_status(done: int, total: int, unit: str, counted: int, counted_unit: str, seconds: float) -> str:
    """`done/total unit done, rate counted_unit/s, about T left` (at the end: `took T`)."""
    rate = counted / seconds if seconds > 0 else float("inf")
    shown = "-" if rate == float("inf") else f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
    when = f"took {duration(seconds)}" if done >= total else f"about {duration(seconds * (total - done) / done)} left"
    return f"{done:,}/{total:,} {unit} done, {shown} {counted_unit}/s, {when}"


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: a time to wait, as a log line says it."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
