"""Per-customer reasons: the strongest drivers of a customer's churn risk, in plain words.

Contributions (SHAP values of the churn model's log-odds) are summed per reason family
(models/reason_families.py; each feature names its family in the catalogue),
so that `purchases_30d`, `purchases_90d` and `days_since_last_purchase` make one reason
("no purchase for 94 days (usually every 21)") instead of three. Only families that push
risk up are reasons; the text is written from the customer's own feature values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.stage_sql import Feature
from models.lifetime import LIFETIME_FEATURES
from models.reason_families import FAMILIES


def family_texts(features: pd.DataFrame, families: list[str]) -> np.ndarray:
    """A (rows x families) array of each family's reason text for each row ('' when the
    family has nothing to say or its features are absent). Vectorised per family."""
    texts = np.full((len(features), len(families)), "", dtype=object)
    for j, family in enumerate(families):
        if family not in FAMILIES:
            continue
        try:
            texts[:, j] = FAMILIES[family].text(features).fillna("").to_numpy(dtype=object)
        except KeyError:  # the stage behind this family was skipped (its table is absent)
            continue
    return texts


def family_contributions(contributions: pd.DataFrame, catalog: list[Feature]) -> pd.DataFrame:
    """Sum per-feature contributions into one column per reason family. The lifetime
    model's outputs summarise purchase behaviour, so they count as a purchase lapse."""
    family_of = {f.name: f.family or "other" for f in catalog} | dict.fromkeys(LIFETIME_FEATURES, "purchase_lapse")
    families = contributions.columns.map(lambda c: family_of.get(c, "other"))
    return contributions.T.groupby(families.to_numpy()).sum().T


def top_reasons(
    features: pd.DataFrame, contributions: pd.DataFrame, catalog: list[Feature], count: int
) -> tuple[list[str], list[str | None]]:
    """For each row: the texts of the `count` families that raise risk most (joined with
    '; '), and the name of the strongest family (None when nothing raises risk)."""
    by_family = family_contributions(contributions, catalog)
    names = list(by_family.columns)
    values = by_family.to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :count]
    texts = family_texts(features.reset_index(drop=True), names)
    rows = np.arange(len(values))
    picked = [np.where(values[rows, order[:, k]] > 0, texts[rows, order[:, k]], "") for k in range(order.shape[1])]
    joined = ["; ".join(p for p in parts if p) for parts in zip(*picked, strict=True)] if picked else [""] * len(rows)
    strongest = values[rows, order[:, 0]] > 0 if len(names) else np.zeros(len(rows), bool)
    main = [names[order[i, 0]] if strongest[i] else None for i in rows]
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
