"""Per-customer reasons: the strongest drivers of a customer's churn risk, in plain words.

Contributions (SHAP values of the churn model's log-odds) are summed per reason family
(models/reason_families.py; each feature names its family in the catalogue),
so that `purchases_30d`, `purchases_90d` and `days_since_last_purchase` make one reason
("no purchase for 94 days (usually every 21)") instead of three. Only families that push
risk up are reasons, and only where the family has something true and risky to say: a
family whose writer is silent for a customer (a promoter, a purchase within the usual gap)
gives its place to the next risk-raising family."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.feature import Feature
from models.lifetime import LIFETIME_FEATURES
from models.reason_families import FAMILIES, LIFETIME_FAMILY, UNKNOWN_FAMILY


def family_texts(features: pd.DataFrame, families: list[str], population: pd.DataFrame | None = None) -> np.ndarray:
    """A (rows x families) array of each family's reason text for each row ('' when the
    family has nothing risky to say or its features are absent). Vectorised per family;
    `population` (default: `features`) is the scored frame the typical customer comes from."""
    population = features if population is None else population
    texts = np.full((len(features), len(families)), "", dtype=object)
    for j, family in enumerate(families):
        if family not in FAMILIES:
            continue
        try:
            texts[:, j] = FAMILIES[family].text(features, population).fillna("").to_numpy(dtype=object)
        except KeyError:  # the stage behind this family was skipped (its table is absent)
            continue
    return texts


def family_contributions(contributions: pd.DataFrame, catalog: list[Feature]) -> pd.DataFrame:
    """Sum per-feature contributions into one column per reason family. The lifetime
    model's outputs summarise purchase behaviour, so they count as a purchase lapse."""
    family_of = {f.name: f.family or UNKNOWN_FAMILY for f in catalog}
    family_of |= dict.fromkeys(LIFETIME_FEATURES, LIFETIME_FAMILY)
    families = contributions.columns.map(lambda c: family_of.get(c, UNKNOWN_FAMILY))
    return contributions.T.groupby(families.to_numpy()).sum().T


def top_reasons(
    features: pd.DataFrame, contributions: pd.DataFrame, catalog: list[Feature], count: int,
    population: pd.DataFrame | None = None,
) -> tuple[list[str], list[str | None]]:
    """For each row: the texts of the `count` strongest risk-raising families that have a
    reason to give (joined with '; '), and the name of the first of them (None when no
    family both raises the risk and has a reason). `population` (default: `features`) is
    the scored frame the typical customer comes from."""
    by_family = family_contributions(contributions, catalog)
    names = list(by_family.columns)
    values = by_family.to_numpy()
    rows = np.arange(len(values))
    if not names:
        return [""] * len(rows), [None] * len(rows)
    texts = family_texts(features.reset_index(drop=True), names, population)
    order = np.argsort(-values, axis=1, kind="stable")
    ordered = rows[:, None], order
    speaks = (values[ordered] > 0) & (texts[ordered] != "")  # in order of contribution
    place = np.cumsum(speaks, axis=1)
    picked, first = [], None
    for k in range(1, count + 1):
        at = speaks & (place == k)
        has = at.any(axis=1)
        column = order[rows, at.argmax(axis=1)]
        picked.append(np.where(has, texts[rows, column], ""))
        first = (has, column) if first is None else first
    joined = ["; ".join(p for p in parts if p) for parts in zip(*picked, strict=True)]
    has, column = first
    main = [names[column[i]] if has[i] else None for i in rows]
    return joined, main


def top_reason_agreement(fast: pd.DataFrame, exact: pd.DataFrame, catalog: list[Feature]) -> float:
    """Share of rows whose strongest risk-raising reason family is the same under the fast
    attributions as under exact SHAP (rows where SHAP names one)."""
    fast_families, exact_families = family_contributions(fast, catalog), family_contributions(exact, catalog)
    named = exact_families.max(axis=1) > 0
    if not named.any():
        return float("nan")
    same = fast_families.idxmax(axis=1)[named] == exact_families.idxmax(axis=1)[named]
    return float(same.mean())
