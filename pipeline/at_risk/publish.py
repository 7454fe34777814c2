"""Publishing tonight's list: its manifest (what was read, which models, how many customers
per tier, value at risk, drift), the dated folder of list files, CRM import files, summary
page and manifest, which appears whole or not at all, and `latest`, the stable path of the
newest list.

`<output_dir>/latest` is a symbolic link to the newest dated folder beside it (a relative
link, `latest -> 2026-01-01`), swapped in one step (`files.atomic_symlink`) once the dated
folder is in place. A scheduled import that reads `latest/crm/hubspot/...` reads each file
from one whole list: the link names a folder that is itself replaced whole, and a file already
open is read to its end even when the link moves on (a reader that needs several files of the
same night resolves the link once, e.g. `readlink latest`). A link costs no copy of a large
list and cannot disagree with the dated folder. It only moves forward: scoring an earlier
date (a backfill) leaves a newer `latest` where it is. Anything else at `latest` (a folder, a
file, a link elsewhere) is not the pipeline's, and the run refuses before writing anything
(exit 7)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from pipeline.at_risk.crm import write_crm_exports
from pipeline.at_risk.listing import AT_RISK_VERSION, rows_written, write_at_risk_files
from pipeline.at_risk.scores import drift_reference
from pipeline.at_risk.summary import render_summary
from pipeline.at_risk.tiers import TIERS
from pipeline.config import ScoringConfig
from pipeline.errors import OutputError
from pipeline.files import atomic_directory, atomic_symlink, file_sha256, output_error, run_lock
from pipeline.tables import Tables

log = logging.getLogger(__name__)

LATEST = "latest"


def build_manifest(tables: Tables, as_of: dt.date, scored: pd.DataFrame, at_risk: pd.DataFrame, champions,
                   drift: dict[str, float], warnings: list[str], started: dt.datetime, cfg: ScoringConfig) -> dict:
    """Everything a reader needs to trust or trace tonight's list, before any file exists."""
    return {
        "at_risk_list_version": AT_RISK_VERSION,
        "as_of_date": as_of.isoformat(),
        "models": {m.name: {"version": m.version, "run_id": m.run_id, "training_run_id": m.training_run_id}
                   for m in champions},
        "input_data": tables.fingerprint(),
        "customers_scored": len(scored),
        "customers_listed": len(at_risk),
        "customers_per_tier": {t: int((scored["risk_tier"] == t).sum()) for t in TIERS},
        "total_value_at_risk": round(float(scored["value_at_risk"].sum()), 2),
        # reasons that contradict their customer's features (models/reason_check.py); None: not counted
        "reason_contradictions": scored.attrs.get("reason_contradictions"),
        "currency": cfg.currency,
        "quarantined_rows": tables.quarantined,
        "drift_psi": drift,
        "warnings": warnings,
        "run_started_at": started.isoformat(timespec="seconds"),
    }


def publish_at_risk_list(at_risk: pd.DataFrame, scored: pd.DataFrame, manifest: dict, churn_model,
                         cfg: ScoringConfig, contacts: pd.DataFrame | None = None,
                         write_more: Callable[[pd.DataFrame, Path], dict[str, int]] | None = None) -> Path:
    """Write the list files, those of `write_more` (the list, the staging folder -> {file
    relative to it: rows}; on Spark the list by date), the CRM import files of
    `scoring.exports` (from `contacts`, see `crm.contacts.fetch_contacts`), summary.html and
    manifest.json into <output_dir>/<as-of date>, swapped in whole (`atomic_directory`:
    leftovers of a crashed run are recovered first), then move `latest` to it unless it
    shows a newer date; return the folder.

    Runs under the output folder's run lock. `churn score` holds it for the whole run, and
    this joins that hold rather than taking the lock again; a caller that holds none (a
    benchmark, a test) gets it for the publish. A date path that is a file or a symbolic
    link, a `latest` the pipeline did not make, or an OS error while writing (a full disk, a
    read-only folder), raises OutputError (exit 7) and leaves the previous list as it was."""
    as_of = dt.date.fromisoformat(manifest["as_of_date"])
    target = cfg.output_dir / as_of.isoformat()
    latest = cfg.output_dir / LATEST
    with run_lock(cfg.output_dir):
        try:
            with atomic_directory(target, guard=lambda _: latest_list_date(latest)) as staging:
                written = write_at_risk_files(at_risk, staging, cfg)
                more = write_more(at_risk, staging) if write_more else {}
                if cfg.exports:
                    manifest["crm_exports"] = write_crm_exports(at_risk, contacts, staging, cfg)
                reference = drift_reference(churn_model).get("churn_probability")
                (staging / "summary.html").write_text(render_summary(scored, as_of, manifest, reference),
                                                      encoding="utf-8")
                manifest["outputs"] = {
                    name: {"rows": rows_written(fmt, at_risk, cfg), "sha256": file_sha256(staging / name)}
                    for fmt, name in written.items()
                } | {name: {"rows": rows, "sha256": file_sha256(staging / name)} for name, rows in more.items()}
                manifest["run_finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
                (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        except OSError as exc:
            raise output_error(exc, target, "write the at-risk list to", "scoring.output_dir") from exc
        try:
            advance_latest(latest, as_of)
        except OSError as exc:
            raise output_error(exc, latest, f"point {LATEST} at the list of {as_of}, written to",
                               "scoring.output_dir") from exc
    log.info("at-risk list for %s written to %s (%d rows)", as_of, target, len(at_risk))
    return target


def latest_list_date(latest: Path) -> dt.date | None:
    """The as-of date `latest` shows; None while there is none (or its dated folder is gone).
    Raises OutputError when `latest` is not the pipeline's link to a dated folder beside it."""
    if not os.path.lexists(latest):
        return None
    if latest.is_symlink():
        pointed = os.readlink(latest)
        date = _iso_date(pointed)
        if date is not None:
            return date if (latest.parent / pointed).is_dir() else None
        raise OutputError(
            f"{latest} is a symbolic link to {pointed}, where the run keeps its link to the newest dated list. "
            "The run does not replace a link it did not make, so nothing was written and the link is left as it is. "
            "Remove or rename it, and rerun."
        )
    kind = "folder" if latest.is_dir() else "file"
    raise OutputError(
        f"{latest} is a {kind} the pipeline did not make, where it keeps a symbolic link to the newest dated list. "
        f"The run never deletes what it did not make, so nothing was written and the {kind} is left as it is. "
        "Move it away (or point scoring.output_dir at another folder), and rerun."
    )


def advance_latest(latest: Path, as_of: dt.date) -> None:
    """Point `latest` at the dated folder of `as_of`, unless it shows that date or a newer one."""
    shown = latest_list_date(latest)
    if shown is not None and shown >= as_of:
        if shown > as_of:
            log.info("%s stays at the newer list of %s", latest, shown)
        return
    atomic_symlink(as_of.isoformat(), latest)


def _iso_date(name: str) -> dt.date | None:
    """The date a dated folder's name spells (2026-01-01); None for any other name."""
    try:
        date = dt.date.fromisoformat(name)
    except ValueError:
        return None
    return date if date.isoformat() == name else None
