"""Publishing tonight's list: its manifest (what was read, which models, how many customers
per tier, value at risk, drift), and the dated folder of list files, summary page and
manifest, which appears whole or not at all."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd

from pipeline.at_risk.listing import AT_RISK_VERSION, rows_written, write_at_risk_files
from pipeline.at_risk.scores import drift_reference
from pipeline.at_risk.summary import render_summary
from pipeline.at_risk.tiers import TIERS
from pipeline.config import ScoringConfig
from pipeline.files import atomic_directory, file_sha256, output_error, run_lock
from pipeline.tables import Tables

log = logging.getLogger(__name__)


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
                         cfg: ScoringConfig) -> Path:
    """Write the list files, summary.html and manifest.json into <output_dir>/<as-of date>,
    swapped in whole (`atomic_directory`: leftovers of a crashed run are recovered first);
    return the folder.

    Runs under the output folder's run lock. `churn score` holds it for the whole run, and
    this joins that hold rather than taking the lock again; a caller that holds none (a
    benchmark, a test) gets it for the publish. A date path that is a file or a symbolic
    link, or an OS error while writing (a full disk, a read-only folder), raises
    OutputError (exit 7) and leaves the previous list as it was."""
    as_of = dt.date.fromisoformat(manifest["as_of_date"])
    target = cfg.output_dir / as_of.isoformat()
    try:
        with run_lock(cfg.output_dir), atomic_directory(target) as staging:
            written = write_at_risk_files(at_risk, staging, cfg)
            reference = drift_reference(churn_model).get("churn_probability")
            (staging / "summary.html").write_text(render_summary(scored, as_of, manifest, reference), encoding="utf-8")
            manifest["outputs"] = {
                name: {"rows": rows_written(fmt, at_risk, cfg), "sha256": file_sha256(staging / name)}
                for fmt, name in written.items()
            }
            manifest["run_finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except OSError as exc:
        raise output_error(exc, target, "write the at-risk list to", "scoring.output_dir") from exc
    log.info("at-risk list for %s written to %s (%d rows)", as_of, target, len(at_risk))
    return target
