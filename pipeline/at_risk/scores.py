"""Scoring one date: churn probability, CLV, value at risk, tier, reasons, segment and
recommended action for every active customer, and the drift of tonight's inputs.

Features come from the model-input layer (the same code as training); the models are the
fitted project models inside the registered champions. Each model's input of tonight's
customers (the lifetime model's outputs, the scorer's typed columns) is prepared once, in
`model_input`: the churn model's is read again by the reasons and the drift check."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from features.catalog import feature_catalog
from features.model_input import features_at
from models.drift import population_stability_index
from models.lifetime import LIFETIME_FEATURES
from models.prepared import PreparedInput
from models.reason_check import count_contradictions
from models.reasons import top_reasons
from pipeline.at_risk.actions import assign_segments, recommend_actions
from pipeline.at_risk.listing import value_at_risk
from pipeline.at_risk.tiers import LOWEST_TIER, assign_tiers
from pipeline.config import Config
from pipeline.errors import ConfigError, DataError
from pipeline.logs import stage
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def score_customers(tables: Tables, cfg: Config, as_of: dt.date, churn_model, clv_model
                    ) -> tuple[pd.DataFrame, dict[str, float]]:
    """One row per customer active at `as_of`, and the population stability index of the
    score and top features against training (on Spark: pipeline/engines/spark_scoring.py)."""
    features = active_features(tables, cfg, as_of)
    clv = clv_model.predict(model_input(features, clv_model, "clv"))  # read once: let go after
    customers = model_input(features, churn_model, "churn")  # predicted, explained, checked for drift
    probability = churn_model.predict(customers)
    with stage("explain churn risk") as info:
        explained = explain_customers(customers, probability, clv, churn_model, cfg)
        note_reasons(explained, info)
    log_contradictions(explained.attrs["reason_contradictions"])
    return scored_customers(features, explained, cfg), score_drift(customers, probability, churn_model)


def active_features(tables: Tables, cfg: Config, as_of: dt.date) -> pd.DataFrame:
    """The model input of every customer active at `as_of` (features/model_input.py)."""
    features = features_at(tables, cfg, as_of)
    if features.empty:
        raise DataError(
            f"No customer is active at {as_of} (no purchase in the {cfg.churn.active_lookback_days} days "
            "before it). Is --as-of within the data's time range?"
        )
    return features


def model_input(features: pd.DataFrame, model, kind: str) -> PreparedInput:
    """The model input of tonight's customers for one model (`kind`: churn or clv),
    prepared once for everything scoring computes with that model (models/prepared.py)."""
    with stage(f"prepare the {kind} model's input") as info:
        prepared = model.prepare(features)
        info["rows"] = len(prepared)
    return prepared


def explain_customers(customers: PreparedInput, probability: np.ndarray, clv: np.ndarray, churn_model, cfg: Config,
                      population: pd.DataFrame | None = None) -> pd.DataFrame:
    """What the list says of each customer, row by row: churn probability, tier, CLV, value
    at risk, reasons and recommended action (index: the features'), with the number of
    contradicting reasons in attrs["reason_contradictions"]. `customers` is the churn
    model's input of them (`churn_model.prepare`); `population` (default: their features)
    is the scored frame the typical customer comes from."""
    features = customers.features
    tiers = assign_tiers(probability, cfg.scoring.tiers)
    texts, main, contradictions = explain_risk(customers, tiers, churn_model, cfg, population)
    member = features["is_loyalty_member"] if "is_loyalty_member" in features else None
    explained = pd.DataFrame({
        "churn_probability": probability,
        "risk_tier": tiers,
        "predicted_clv": clv,
        "value_at_risk": value_at_risk(probability, clv),
        "top_reasons": texts,
        "recommended_action": recommend_actions(tiers, main, clv, member, cfg.scoring.actions),
    }, index=features.index)
    explained.attrs["reason_contradictions"] = contradictions
    return explained


def scored_customers(features: pd.DataFrame, explained: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The scored customers: id, `explained` and the segment (quintiles of everyone scored)."""
    scored = pd.concat([features["customer_id"].astype(str), explained], axis=1)
    scored.insert(scored.columns.get_loc("recommended_action"), "segment",
                  assign_segments(features, cfg.scoring.segments).to_numpy())
    scored.attrs["reason_contradictions"] = explained.attrs["reason_contradictions"]
    return scored


def score_drift(customers: pd.DataFrame | PreparedInput, probability: np.ndarray, churn_model) -> dict[str, float]:
    """The population stability index of the score and top features against training, from
    the churn model's input of the scored customers (or their features: prepared here)."""
    return {name: round(population_stability_index(drift_reference(churn_model)[name], values), 4)
            for name, values in churn_model.drift_inputs(customers, probability).items()}


def explain_risk(customers: PreparedInput, tiers: np.ndarray, churn_model, cfg: Config,
                 population: pd.DataFrame | None = None) -> tuple[np.ndarray, list[str | None], int]:
    """The reason texts of every customer above the lowest tier, the family of each one's
    first reason (None for the lowest tier, or where no risk-raising family has a reason),
    and how many of tonight's reasons contradict their customer's features
    (models/reason_check.py). `customers` is the churn model's input of them; the typical
    customer is taken from `population`, by default everyone in `customers`."""
    population = customers.features if population is None else population
    carries_reasons = tiers != LOWEST_TIER
    texts = np.full(len(customers), "", dtype=object)
    main: list[str | None] = [None] * len(customers)
    contradictions = 0
    if carries_reasons.any():
        subset = customers.rows(carries_reasons)
        found, strongest = top_reasons(subset.features, churn_model.contributions(subset),
                                       feature_catalog(cfg.features), cfg.scoring.reasons_per_customer,
                                       population=population)
        texts[carries_reasons] = found
        for position, family in zip(np.flatnonzero(carries_reasons), strongest, strict=True):
            main[position] = family
        contradictions = count_contradictions(found, subset.features, population)
    return texts, main, contradictions


def note_reasons(explained: pd.DataFrame, info: dict) -> None:
    """The stage's counts: customers given reasons, and reasons that contradict."""
    info["customers_with_reasons"] = int((explained["risk_tier"] != LOWEST_TIER).sum())
    info["reason_contradictions"] = explained.attrs["reason_contradictions"]


def log_contradictions(contradictions: int) -> None:
    if contradictions:
        log.warning("%d of tonight's reasons contradict their customer's features (models/reason_check.py)",
                    contradictions)


def drift_reference(churn_model) -> dict[str, dict]:
    """Training-time distributions stored in the model; models logged before the drift guard
    existed carry none, and are scored without it."""
    return getattr(churn_model, "reference", {})


def check_drift(drift: dict[str, float], config: Config) -> list[str]:
    """One warning line per input whose distribution moved past `drift_warn_psi` against
    training; the run stops only for inputs named in `drift_stop_on` that moved past
    `drift_fail_psi` (stopping is opt-in: a shifted season is news, not always an error)."""
    cfg = config.scoring
    descriptions = {f.name: f.description for f in feature_catalog(config.features)} | LIFETIME_FEATURES
    def said(name: str) -> str:
        return describe_input(name, descriptions)

    warnings = [f"{said(name)} has shifted since training: population stability index {psi:.2f} "
                f"(above {cfg.drift_warn_psi})" for name, psi in drift.items() if psi > cfg.drift_warn_psi]
    stopping = [f"  {said(name)}: population stability index {psi:.2f} (above {cfg.drift_fail_psi})"
                for name, psi in drift.items() if name in cfg.drift_stop_on and psi > cfg.drift_fail_psi]
    if stopping:
        raise DataError(
            "Tonight's inputs have shifted past scoring.drift_fail_psi for inputs named in scoring.drift_stop_on, "
            "so no list was written:\n" + "\n".join(stopping) + "\nCheck that the export is complete and "
            "correct; if the shift is real, retrain with `make train`, or remove the input from drift_stop_on."
        )
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def describe_input(name: str, descriptions: dict[str, str]) -> str:
    """A drift input in words: the score, or a feature with its one-line description."""
    if name == "churn_probability":
        return "churn_probability (the score itself)"
    return f"{name} ({descriptions.get(name, 'a model input').rstrip('.')})"


def customer_columns(tables: Tables) -> set[str]:
    """The columns of the customers table, the contract's and any extra ones."""
    return set(tables.columns("customers"))


def check_passthrough_columns(tables: Tables, columns: list[str]) -> None:
    """Every configured passthrough column must be a column of the customers table."""
    available = customer_columns(tables)
    missing = [c for c in columns if c not in available]
    if missing:
        raise ConfigError(
            f"scoring.passthrough_columns names {missing}, which the customers table does not have "
            f"(it has {sorted(available)}). Remove them from the config or add them to customers."
        )


def customer_columns_of(tables: Tables, columns: list[str]) -> pd.DataFrame:
    """customer_id and `columns` (columns of customers) for every customer."""
    select = ", ".join(['customer_id', *(f'"{c}"' for c in columns)])
    return tables.query(f"SELECT {select} FROM customers")


def passthrough_columns(tables: Tables, columns: list[str]) -> pd.DataFrame:
    """customer_id and the configured columns of the customers table, for the list."""
    check_passthrough_columns(tables, columns)
    return customer_columns_of(tables, columns)
