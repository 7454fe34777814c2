"""The nightly job: score every active customer with the champion models and publish a
dated at-risk list, its manifest, atomically.

validate inputs -> load champions -> active customers at the as-of date -> features (the
training code) -> churn probability, CLV, reasons -> at-risk list -> atomic publish."""

from __future__ import annotations

import datetime as dt
import json
import logging

import numpy as np
import pandas as pd

from features.frame import build_features, feature_catalog
from features.population import build_active_spine
from models.evaluate import population_stability_index
from models.explain import top_reasons
from pipeline import tracking
from pipeline.at_risk import (
    AT_RISK_VERSION,
    TIERS,
    assign_segments,
    assign_tiers,
    build_at_risk_list,
    recommend_actions,
    write_at_risk_files,
)
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.files import atomic_directory, file_sha256
from pipeline.lock import run_lock
from pipeline.logs import stage
from pipeline.summary import render_summary
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def score_customers(tables: Tables, cfg: Config, as_of: dt.date, churn_model, clv_model
                    ) -> tuple[pd.DataFrame, dict[str, float]]:
    """Churn probability, CLV, tier, reasons, segment and action for every active customer,
    and the population stability index of the score and top features against training."""
    spine = build_active_spine(tables, [as_of], cfg.churn)
    if spine.empty:
        raise DataError(
            f"No customer is active at {as_of} (no purchase in the {cfg.churn.active_lookback_days} days "
            "before it). Is --as-of within the data's time range?"
        )
    features = build_features(tables, spine, cfg.features)
    probability = churn_model.predict(features)
    clv = clv_model.predict(features)
    tiers = assign_tiers(probability, cfg.scoring.tiers)
    with stage("explain churn risk") as info:
        carries_reasons = tiers != "low"
        texts = np.full(len(features), "", dtype=object)
        main: list[str | None] = [None] * len(features)
        if carries_reasons.any():
            subset = features[carries_reasons]
            found, strongest = top_reasons(subset, churn_model.contributions(subset),
                                           feature_catalog(cfg.features), cfg.scoring.reasons_per_customer)
            texts[carries_reasons] = found
            for position, family in zip(np.flatnonzero(carries_reasons), strongest, strict=True):
                main[position] = family
        info["customers_with_reasons"] = int(carries_reasons.sum())
    member = features["is_loyalty_member"] if "is_loyalty_member" in features else None
    drift = {name: round(population_stability_index(drift_reference(churn_model)[name], values), 4)
             for name, values in churn_model.drift_inputs(features, probability).items()}
    return pd.DataFrame({
        "customer_id": features["customer_id"].astype(str),
        "churn_probability": probability,
        "risk_tier": tiers,
        "predicted_clv": clv,
        "top_reasons": texts,
        "segment": assign_segments(features, cfg.scoring.segments).to_numpy(),
        "recommended_action": recommend_actions(tiers, main, clv, member, cfg.scoring.actions),
    }), drift


def drift_reference(churn_model) -> dict[str, dict]:
    """Training-time distributions stored in the model; models logged before the drift guard
    existed carry none, and are scored without it."""
    return getattr(churn_model, "reference", {})


def check_drift(drift: dict[str, float], cfg) -> list[str]:
    """Warnings for drifted inputs; stop the run when any drifted past the failure level."""
    failed = {k: v for k, v in drift.items() if v > cfg.drift_fail_psi}
    if failed:
        raise DataError(
            f"Input drift above scoring.drift_fail_psi={cfg.drift_fail_psi}: {failed} (population stability "
            "index against the training data). Check the input data, or retrain with `make train`."
        )
    warnings = [f"{k} drifted: PSI {v:.3f} > {cfg.drift_warn_psi}" for k, v in drift.items() if v > cfg.drift_warn_psi]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def passthrough_columns(tables: Tables, columns: list[str]) -> pd.DataFrame:
    available = set(tables.con.sql("SELECT * FROM customers LIMIT 0").columns)
    missing = [c for c in columns if c not in available]
    if missing:
        raise ConfigError(
            f"scoring.passthrough_columns names {missing}, which the customers table does not have "
            f"(it has {sorted(available)}). Remove them from the config or add them to customers."
        )
    select = ", ".join(['customer_id', *(f'"{c}"' for c in columns)])
    return tables.query(f"SELECT {select} FROM customers")


def run_scoring(tables: Tables, cfg: Config, as_of: dt.date, dry_run: bool = False) -> dict:
    started = dt.datetime.now(dt.UTC)
    client = tracking.start_tracking(cfg.tracking)
    churn = tracking.load_champion(client, cfg.tracking.churn_model_name)
    clv = tracking.load_champion(client, cfg.tracking.clv_model_name)
    log.info("champions: %s v%s, %s v%s", churn.name, churn.version, clv.name, clv.version)
    with stage("score active customers") as info:
        scored, drift = score_customers(tables, cfg, as_of, churn.fitted, clv.fitted)
        info["customers"] = len(scored)
    warnings = check_drift(drift, cfg.scoring)
    at_risk = build_at_risk_list(scored, as_of, churn.version, clv.version,
                                 passthrough_columns(tables, cfg.scoring.passthrough_columns), cfg.scoring)
    manifest = {
        "at_risk_list_version": AT_RISK_VERSION,
        "as_of_date": as_of.isoformat(),
        "models": {m.name: {"version": m.version, "run_id": m.run_id} for m in (churn, clv)},
        "input_data": tables.fingerprint(),
        "customers_scored": len(scored),
        "customers_listed": len(at_risk),
        "customers_per_tier": {t: int((scored["risk_tier"] == t).sum()) for t in TIERS},
        "total_value_at_risk": round(float((scored["churn_probability"] * scored["predicted_clv"]).sum()), 2),
        "quarantined_rows": tables.quarantined,
        "drift_psi": drift,
        "warnings": warnings,
        "run_started_at": started.isoformat(timespec="seconds"),
    }
    if dry_run:
        log.info("dry run: nothing written (%d customers scored)", len(scored))
        return manifest
    target = cfg.scoring.output_dir / as_of.isoformat()
    with run_lock(cfg.scoring.output_dir), atomic_directory(target) as staging:
        written = write_at_risk_files(at_risk, staging, cfg.scoring)
        reference = drift_reference(churn.fitted).get("churn_probability")
        (staging / "summary.html").write_text(render_summary(scored, as_of, manifest, reference), encoding="utf-8")
        manifest["outputs"] = {
            name: {"rows": len(at_risk), "sha256": file_sha256(staging / name)} for name in written.values()
        }
        manifest["run_finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    log.info("at-risk list for %s written to %s (%d rows)", as_of, target, len(at_risk))
    manifest["output_dir"] = str(target)
    return manifest
