"""Join every feature stage onto the customer spine: the model-ready frame.

Stages run in this order; a stage whose table is absent is skipped and says so."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd

from features import interactions, profile, rfm, subscriptions, support_tickets, surveys
from features.catalog import KEYS, Feature
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables

log = logging.getLogger(__name__)


class Stage(NamedTuple):
    name: str
    table: str
    build: Callable[[Tables, pd.DataFrame, FeaturesConfig], pd.DataFrame]
    catalog: Callable[[FeaturesConfig], list[Feature]]
    query: Callable[[FeaturesConfig], tuple[str, dict]]


STAGES = [
    Stage(rfm.STAGE, rfm.TABLE, rfm.build_rfm_features, rfm.catalog, rfm.stage_query),
    Stage(interactions.STAGE, interactions.TABLE, interactions.build_interaction_features, interactions.catalog,
          interactions.stage_query),
    Stage(support_tickets.STAGE, support_tickets.TABLE, support_tickets.build_support_ticket_features,
          support_tickets.catalog, support_tickets.stage_query),
    Stage(surveys.STAGE, surveys.TABLE, surveys.build_survey_features, surveys.catalog, surveys.stage_query),
    Stage(subscriptions.STAGE, subscriptions.TABLE, subscriptions.build_subscription_features,
          subscriptions.catalog, subscriptions.stage_query),
    Stage(profile.STAGE, profile.TABLE, profile.build_profile_features, profile.catalog, profile.stage_query),
]


def feature_catalog(cfg: FeaturesConfig) -> list[Feature]:
    return [feature for stage in STAGES for feature in stage.catalog(cfg)]


def build_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """One row per spine row (customer_id, cutoff_date), one column per feature of every
    stage whose table is present. Categorical features stay plain text (missing: NaN), as a
    client of the logged model would send them; the model turns them into categories."""
    frame = spine[KEYS].sort_values(KEYS, kind="stable").reset_index(drop=True)
    kinds = {feature.name: feature.kind for feature in feature_catalog(cfg)}
    parts = [frame]
    for stage in STAGES:
        if not tables.has(stage.table):
            log.info("stage %-16s skipped: no %s table", stage.name, stage.table)
            continue
        started = time.perf_counter()
        part = stage.build(tables, frame, cfg).drop(columns=KEYS)
        for name in part.columns:  # one dtype per kind, whatever the engine returned
            if kinds[name] == "categorical":
                part[name] = part[name].astype("str")
            else:  # float64 with NaN for missing
                part[name] = pd.to_numeric(part[name]).astype("float64")
        parts.append(part)
        log.info("stage %-16s %3d features for %s rows in %.1fs", stage.name, part.shape[1], f"{len(part):,}",
                 time.perf_counter() - started)
    # one concatenation at the end: the frame is copied once, not once per stage
    return pd.concat(parts, axis=1)
