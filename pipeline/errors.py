"""Expected failures. The CLI prints their message as one paragraph, without a traceback
(unless --debug), and exits non-zero. Anything else is a bug and shows its traceback. A signal
(Ctrl-C, SIGTERM) ends a run as one too: `on_signals` raises `Signalled` within, the run
reports `Interrupted`."""

from __future__ import annotations

import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


class PipelineError(Exception):
    """A failure the user can fix: the message says what failed, where, and how to fix it."""

    exit_code = 1


class ConfigError(PipelineError):
    exit_code = 2


class DataError(PipelineError):
    exit_code = 3


class ModelNotFoundError(PipelineError):
    exit_code = 4


class RunLockedError(PipelineError):
    exit_code = 5


class EngineMemoryError(PipelineError):
    """The embedded engine needed more memory than data.engine_memory_gb allows."""

    exit_code = 6


class OutputError(PipelineError):
    """An output cannot be written safely: a full disk, a read-only or foreign folder, a file
    or a link where the run's folder belongs. Whatever was there before is left as it was."""

    exit_code = 7


class TrackingError(PipelineError):
    """The tracking store cannot be used: a server that does not answer, or a SQLite file that
    is corrupt or held locked by another process. The constructors word each case;
    `of_sqlite_file` finds the case of a SQLite file."""

    exit_code = 8

    @classmethod
    def unreachable(cls, server: str, reason: str, timeout_s: float) -> TrackingError:
        return cls(f"Cannot reach the tracking server at {server}: {reason}. Check that the server runs and that "
                   "tracking.uri (or MLFLOW_TRACKING_URI) names it; a slow server needs a larger "
                   f"tracking.timeout_seconds (now {timeout_s:g}).")

    @classmethod
    def busy(cls, path, waited_s: float, what: str = "tracking store") -> TrackingError:
        return cls(f"The {what} {path} is busy: another process has held it locked for more than {waited_s:g} s "
                   "(tracking.busy_timeout_seconds). Wait for that process (another `churn train` or `churn tune`, "
                   "or an `mlflow ui` writing to it) to finish and rerun, or raise tracking.busy_timeout_seconds.")

    @classmethod
    def of_sqlite_file(cls, path: Path, busy_timeout_s: float, what: str = "tracking store",
                       recovery: str | None = None) -> TrackingError | None:
        """The error of a SQLite store that is corrupt, or that another process holds locked for
        longer than `busy_timeout_s` (waited for first); None for a sound (or new, empty) file."""
        if not path.is_file() or path.stat().st_size == 0:
            return None
        try:
            with closing(sqlite3.connect(path, timeout=busy_timeout_s)) as con:
                problem = "; ".join(row[0] for row in con.execute("PRAGMA quick_check").fetchall()[:3])
        except sqlite3.OperationalError as exc:
            if re.search(r"locked|busy", str(exc)):
                return cls.busy(path, busy_timeout_s, what)
            problem = str(exc)
        except sqlite3.DatabaseError as exc:
            problem = str(exc)
        return None if problem == "ok" else cls.corrupt(path, problem, what, *([recovery] if recovery else []))

    @classmethod
    def corrupt(cls, path, detail: str, what: str = "tracking store",
                recovery: str = "run `churn train --promote force` to start a new store") -> TrackingError:
        detail = " ".join(detail.split())[:160]
        return cls(f"The {what} {path} is corrupt ({detail}), so nothing can be read from it. Restore it from a "
                   f"backup, or move it aside (`mv {path} {path}.corrupt`) and {recovery}; `sqlite3 {path}.corrupt "
                   ".recover` may salvage what it held.")


class Interrupted(PipelineError):
    """Stopped by Ctrl-C (SIGINT) or SIGTERM; the exit code is 128 + the signal (130, 143)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.signum, self.exit_code = signum, 128 + signum


class Signalled(KeyboardInterrupt):
    """What a signal raises within `on_signals(raise_signalled)`: a KeyboardInterrupt, as Ctrl-C's,
    so that no `except Exception` swallows it; the run it stops reports it as Interrupted. Raised
    where Python only prints an exception (a garbage collector callback), it is kept pending
    and `check_signals` raises it again; whoever handles it calls `signal_handled`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"Stopped by {signal.Signals(signum).name}.")
        self.signum = signum


_pending: list[int] = []


def raise_signalled(signum: int, frame=None) -> None:
    _pending.append(signum)
    raise Signalled(signum)


def check_signals() -> None:
    if _pending:
        raise Signalled(_pending[-1])


def signal_handled() -> None:
    _pending.clear()


def _unraisable(unraisable) -> None:
    if not isinstance(unraisable.exc_value, Signalled):  # pending: check_signals raises it again
        sys.__unraisablehook__(unraisable)


@contextmanager
def on_signals(handler, signals=(signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """`handler` for `signals` within (main thread only: Python delivers signals nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, handler) for s in signals}
    hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    try:
        yield
    finally:
        sys.unraisablehook = hook
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Let a short critical step finish: a SIGINT or SIGTERM within is raised right after it."""
    pending: list[int] = []
    with on_signals(lambda signum, frame: pending.append(signum)):
        yield
    if pending:
        raise_signalled(pending[0])
