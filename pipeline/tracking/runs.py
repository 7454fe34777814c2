"""Runs that always end: every MLflow run is tagged with its owner and ends FINISHED, FAILED or
KILLED, and a run a killed process left RUNNING is marked FAILED by the next one."""


from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import mlflow.pyfunc
from mlflow.tracking import MlflowClient

from pipeline import errors
from pipeline.config import TrackingConfig
from pipeline.errors import Interrupted
from pipeline.files import process_gone
from pipeline.tracking.store import guarded, start_tracking

log = logging.getLogger(__name__)


# --- runs that always end ---------------------------------------------------------------


def owner() -> dict[str, str]:  # tagged on runs and trials, so that the next run can tell a dead one
    return {"churn.host": socket.gethostname(), "churn.pid": str(os.getpid())}


def owner_gone(host: str | None, pid: str | None) -> bool:
    """Whether the process that started a run or trial is gone (its pid free, a zombie, or ours);
    False when unknown: another host, or no tags."""
    if host != socket.gethostname() or not str(pid or "").isdigit():
        return False
    # this very process can only be a new one that got the dead one's pid
    return int(pid) == os.getpid() or process_gone(int(pid))


def reap_abandoned_runs(client: MlflowClient, experiment: str) -> None:
    """Mark FAILED the runs left RUNNING by a process that was killed outright (SIGKILL, power)."""
    found = client.get_experiment_by_name(experiment)
    for run in client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        if owner_gone(tags.get("churn.host"), tags.get("churn.pid")):
            client.set_tag(run.info.run_id, "churn.ended_by", f"process {os.getpid()}: its own process was gone")
            client.set_terminated(run.info.run_id, "FAILED")
            log.warning("MLflow run %s (%s) was left RUNNING by process %s, which is gone: marked FAILED",
                        run.info.run_id, run.info.run_name, tags.get("churn.pid", "?"))


@contextmanager
def tracked_run(cfg: TrackingConfig, run_name: str, signals=(signal.SIGINT, signal.SIGTERM)) -> Iterator[tuple]:
    """One MLflow run that always ends: FINISHED, FAILED on an exception, KILLED on `signals`
    (raised within as Signalled) or Interrupted, which leaves with the run named."""
    with guarded(cfg):
        client = start_tracking(cfg)
        reap_abandoned_runs(client, cfg.experiment)
        run = mlflow.start_run(run_name=run_name, tags=owner())
        try:
            with errors.on_signals(errors.raise_signalled, signals):
                yield client, run
                errors.check_signals()  # one that landed where Python could only print it
        except (Interrupted, KeyboardInterrupt) as exc:
            errors.signal_handled()
            signum = getattr(exc, "signum", signal.SIGINT)
            _end_run(run.info.run_id, "KILLED", failing=True)
            raise Interrupted(f"{str(exc) or 'Stopped by SIGINT.'} The MLflow run {run.info.run_id} is marked "
                              "KILLED.", signum) from None
        except BaseException:
            _end_run(run.info.run_id, "FAILED", failing=True)
            raise
        _end_run(run.info.run_id, "FINISHED")


def _end_run(run_id: str, status: str, failing: bool = False) -> None:
    """End run `run_id` with `status`, and any child run still open above it: a signal can
    land inside a child's start or end, where its `with` block cannot close it, and
    mlflow.end_run ends only the innermost run."""
    with errors.deferred_signals():
        try:
            while (active := mlflow.active_run()) is not None:
                mlflow.end_run(status)
                if active.info.run_id == run_id:
                    break
        except Exception as exc:  # noqa: BLE001 - the store may be what failed; keep the first error
            if not failing:
                raise
            log.warning("could not mark the MLflow run %s: %s", status, exc)


