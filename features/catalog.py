"""The feature catalogue: the registry of feature stages, and every feature they declare.

Adding a stage means writing its module (tables, cutoff, config section -> one frame keyed
by customer) and adding one line here. `churn features --catalog`, the reports and the
reasons on the at-risk list read each feature's one-line description and reason family
from this catalogue."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

import pandas as pd

from features import interactions, profile, rfm, subscriptions, support_tickets, surveys
from features.feature import Feature
from pipeline.config import FeaturesConfig
from pipeline.tables import Tables


class Stage(NamedTuple):
    name: str
    table: str
    family: str  # the reason family of its features unless a feature names its own
    build: Callable[[Tables, pd.DataFrame, FeaturesConfig], pd.DataFrame]
    catalog: Callable[[FeaturesConfig], list[Feature]]
    query: Callable[[FeaturesConfig], tuple[str, dict]]

    def features(self, cfg: FeaturesConfig) -> list[Feature]:
        """The stage's features, each with its reason family filled in."""
        return [f if f.family else replace(f, family=self.family) for f in self.catalog(cfg)]


def _stage(module, build: Callable) -> Stage:
    return Stage(module.STAGE, module.TABLE, module.FAMILY, build, module.catalog, module.stage_query)


# Stages run in this order; each reads one table and is skipped when that table is absent.
STAGES = [
    _stage(rfm, rfm.build_rfm_features),
    _stage(interactions, interactions.build_interaction_features),
    _stage(support_tickets, support_tickets.build_support_ticket_features),
    _stage(surveys, surveys.build_survey_features),
    _stage(subscriptions, subscriptions.build_subscription_features),
    _stage(profile, profile.build_profile_features),
]


def feature_catalog(cfg: FeaturesConfig) -> list[Feature]:
    """Every feature of every stage, in frame column order."""
    return [feature for stage in STAGES for feature in stage.features(cfg)]
