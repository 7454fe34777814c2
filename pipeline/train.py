"""`churn train`: build the training frame, fit both models, judge them beside their
baselines on the held-out validation cutoff, then log, register and promote in MLflow.

Time-aware by construction (features/model_input.py): the booster learns from the earlier
training cutoffs, the latest training cutoff calibrates (churn) and stops boosting (both),
and the validation cutoff, whose labels start after every training label has ended, only
measures."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from features.catalog import feature_catalog
from features.model_input import CutoffPlan, all_cutoffs, build_training_frame, plan_cutoffs, split_frame
from models.evaluation import evaluate_churn, evaluate_clv, fit_lifetime_model
from pipeline import tracking
from pipeline.config import Config, model_params
from pipeline.demo import is_demo_world
from pipeline.logs import stage
from pipeline.tables import Tables


def run_training(tables: Tables, cfg: Config, promote: Literal["auto", "force", "never"], config_text: str) -> dict:
    """Train both models, log one MLflow run, register the models; return the run summary."""
    data_end = tables.last_event_at().date()
    plans = {"churn": plan_cutoffs(data_end, cfg.training, cfg.churn.horizon_days),
             "clv": plan_cutoffs(data_end, cfg.training, cfg.clv.horizon_days)}
    with stage("build training frame") as info:
        frame = build_training_frame(tables, cfg, all_cutoffs(plans.values()))
        info["rows"], info["cutoffs"] = len(frame), len(all_cutoffs(plans.values()))
    catalog = feature_catalog(cfg.features)
    features = [f.name for f in catalog if f.name in frame]
    params = model_params(cfg.model)
    churn_split, clv_split = split_frame(frame, plans["churn"]), split_frame(frame, plans["clv"])
    with stage("fit BG/NBD and Gamma-Gamma lifetime models"):
        churn_lifetime = fit_lifetime_model(churn_split.fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
        clv_lifetime = fit_lifetime_model(clv_split.fit, cfg.churn.horizon_days, cfg.clv.horizon_days)
    with stage("train and validate churn model") as info:
        oracle = demo_world_oracle(cfg, churn_split.valid, plans["churn"])
        churn = evaluate_churn(churn_split, features, params["churn"], cfg.model.seed, churn_lifetime, catalog, oracle,
                               cfg.scoring.reasons_per_customer)
        info["validation_rows"], info["roc_auc"] = len(churn_split.valid), round(churn.metrics["roc_auc"], 4)
    with stage("train and validate clv model") as info:
        clv = evaluate_clv(clv_split, features, params["clv"], cfg.model.seed, clv_lifetime)
        info["validation_rows"], info["spearman"] = len(clv_split.valid), round(clv.metrics["spearman"], 4)
    trained = tracking.TrainedModels(
        churn=churn, clv=clv, plans=plans, validation_rows={"churn": churn_split.valid, "clv": clv_split.valid},
        params=params, training_rows=len(frame), data_fingerprint=tables.fingerprint(), config_text=config_text)
    return tracking.log_training_run(cfg, trained, promote)


def demo_world_oracle(cfg: Config, valid: pd.DataFrame, plan: CutoffPlan) -> np.ndarray | None:
    """On a generated demo world, the true churn probability of each validation customer (the
    best any model could do); None on real data, which has no truth."""
    if not is_demo_world(cfg.data.path):
        return None
    from pipeline.demo.truth import oracle_for  # only a demo world has a truth to read

    return oracle_for(cfg.data.path, valid["customer_id"], plan.validation, cfg.churn.horizon_days)
