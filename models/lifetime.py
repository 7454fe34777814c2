"""Customer-lifetime features from the classical probabilistic model, for the boosters.

On purchase-only data the BG/NBD model is hard to beat, so its per-customer outputs are
given to the LightGBM models as extra inputs. The BG/NBD and Gamma-Gamma parameters are
fitted on training rows only and travel inside the fitted model, so scoring computes
exactly what training did. The RFM summary they need is read off the RFM features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.probabilistic import (
    BgNbdParams,
    GammaGammaParams,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    predict_clv,
    probability_no_purchase,
)

UNIT_DAYS = 7.0
LIFETIME_FEATURES = {
    "bgnbd_probability_no_purchase": "BG/NBD probability of no purchase within the churn horizon.",
    "bgnbd_expected_purchases": "BG/NBD expected purchases within the churn horizon.",
    "bgnbd_gamma_gamma_clv": "BG/NBD x Gamma-Gamma expected revenue within the CLV horizon.",
}


def rfm_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """frequency (repeat purchase days), recency (first to last purchase) and T (first
    purchase to cutoff) in weeks, and the average order value, from the RFM features."""
    # float64 before any arithmetic: the same summary as from float64 features
    rfm = frame[["days_since_first_purchase", "days_since_last_purchase", "purchase_days_total",
                 "average_order_value"]].astype(np.float64)
    first, last = rfm["days_since_first_purchase"], rfm["days_since_last_purchase"]
    return pd.DataFrame({
        "frequency": (rfm["purchase_days_total"] - 1).clip(lower=0),
        "recency": (first - last) / UNIT_DAYS,
        "T": first / UNIT_DAYS,
        "monetary_value": rfm["average_order_value"],
    }, index=frame.index)


@dataclass(frozen=True)
class LifetimeModel:
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams
    churn_horizon_days: int
    clv_horizon_days: int

    @classmethod
    def fit(cls, frame: pd.DataFrame, churn_horizon_days: int, clv_horizon_days: int) -> LifetimeModel:
        summary = rfm_summary(frame).dropna()
        bgnbd = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"], unit_days=UNIT_DAYS,
                          penalizer=0.001)
        repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
        gamma_gamma = fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"], penalizer=0.001)
        return cls(bgnbd, gamma_gamma, churn_horizon_days, clv_horizon_days)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The LIFETIME_FEATURES for each row (missing where the customer never bought)."""
        s = rfm_summary(frame)
        known = s.notna().all(axis=1).to_numpy() & (s["monetary_value"] > 0).to_numpy()
        out = pd.DataFrame(np.nan, index=frame.index, columns=list(LIFETIME_FEATURES))
        k = s[known]
        churn_weeks, clv_weeks = self.churn_horizon_days / UNIT_DAYS, self.clv_horizon_days / UNIT_DAYS
        out.loc[known, "bgnbd_probability_no_purchase"] = probability_no_purchase(
            self.bgnbd, churn_weeks, k["frequency"], k["recency"], k["T"])
        out.loc[known, "bgnbd_expected_purchases"] = expected_purchases(
            self.bgnbd, churn_weeks, k["frequency"], k["recency"], k["T"])
        out.loc[known, "bgnbd_gamma_gamma_clv"] = predict_clv(
            self.bgnbd, self.gamma_gamma, clv_weeks, k["frequency"], k["recency"], k["T"], k["monetary_value"])
        return out

    def enrich(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with the lifetime features added (a new frame; the input is not changed)."""
        return with_lifetime(frame, self.features(frame))


def with_lifetime(frame: pd.DataFrame, lifetime: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the lifetime features `lifetime` (LifetimeModel.features of it) in place
    of any it had (a new frame)."""
    return pd.concat([frame.drop(columns=list(LIFETIME_FEATURES), errors="ignore"), lifetime], axis=1)
