"""Measure a trained pipeline forward, the way a user lives it: train on the data as it was
on an as-of date, then judge the champions on what happened after it.

    .venv/bin/python tests/benchmarks/forward_check.py --config CONFIG --as-of YYYY-MM-DD
        [--horizon-days N] [--out DIR] [--code-root PATH]

1. The config's data folder is copied into DIR/data as it stood before the as-of date: every
   event table keeps its rows with an event time (pipeline/contract.py) strictly before it,
   and facts recorded later on a kept row are emptied (a ticket resolved on or after it is
   still open, with no CSAT or effort score yet; a subscription that ends on or after it is
   still running, with no cancel reason). `customers` keeps every customer who signed up
   before the date or has an event before it; its other columns (e.g. is_loyalty_member) are
   the export's, as no history of them exists. A demo world's marker and `truth/` are copied
   too, so that training reports its oracle.
2. DIR/<config name>.yaml is the given config with data, tracking store, artifacts and outputs in
   DIR and `training.validation_cutoff` null (the default split a user gets on that day);
   horizons, model parameters and the tuned-parameter file stay the config's own.
3. `churn train --config DIR/<config name>.yaml --promote force` runs in a child process (timed,
   log in DIR/train.log), and its champions are loaded from DIR/mlflow.db.
4. From the FULL data: the features and both labels of every customer active at the as-of
   date. Features at a date use only events before it, so these are the rows the truncated
   run scores (checked: the same features are built from DIR/data and compared).
5. Forward metrics of the champions on those rows, and of simple baselines fitted only on
   what was known before the date, at the latest cutoff whose label window ends by then:
   logistic regression and LightGBM Tweedie on RFM features, BG/NBD P(no purchase) and
   BG/NBD x Gamma-Gamma. On a demo world, also the oracle's AUC and the model's share of it.
6. One JSON object on stdout, and in DIR/forward.json. Progress goes to stderr.

--code-root PATH measures another checkout of the project: its `pipeline`, `features` and
`models` are imported (first on sys.path) and the child runs `python -m pipeline.cli` with
PYTHONPATH=PATH, with this same Python (the project's venv). MLFLOW_TRACKING_URI and
MLFLOW_REGISTRY_URI are ignored, so a user's team server is never written to.

Exit codes: 0 done; 2 bad arguments or config; 3 the data cannot support the as-of date; 7 DIR
holds files this script did not write; the child's own code when training fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

# Project modules (pipeline, features, models) are imported inside the functions that use
# them, after `use_code_root` has chosen the checkout they come from.

log = logging.getLogger("churn.forward_check")
SCRIPT_ROOT = Path(__file__).resolve().parents[2]
OWNED_MARKER = ".forward-check"  # marks an --out folder this script wrote (it may rewrite it)
OWNED_ENTRIES = ("data", "outputs", "mlartifacts", "mlflow.db", "train.log", "forward.json")  # and the *.yaml

# Baselines: recency, frequency and monetary value from features/rfm.py.
RFM_FEATURES = ["days_since_last_purchase", "purchases_total", "purchase_days_total", "revenue_total"]
LOGISTIC_C = 1.0
TWEEDIE_PARAMS = {"objective": "tweedie", "n_estimators": 300, "learning_rate": 0.03, "num_leaves": 15,
                  "min_child_samples": 50, "n_jobs": 1, "deterministic": True, "force_row_wise": True,
                  "verbose": -1}
# Facts recorded after a row's event time, by table: the timestamp, and the columns known
# only from then on. At the as-of date they did not exist yet.
LATER_FACTS = {
    "support_tickets": {"resolved_at": ("satisfaction", "effort_score")},
    "subscriptions": {"ended_at": ("cancel_reason",)},
}


class CheckFailed(Exception):
    """An expected failure: one paragraph for the user, and an exit code."""

    def __init__(self, message: str, exit_code: int = 3) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Plan:
    """What one measurement is: the config, the date, the horizons and the cutoffs the
    baselines learn from (the latest whose label window ends before the as-of date)."""

    config_path: Path
    as_of: dt.date
    out: Path
    code_root: Path
    churn_horizon: int
    clv_horizon: int

    @property
    def churn_fit_cutoff(self) -> dt.date:
        from features.population import latest_complete_cutoff
        return latest_complete_cutoff(self.as_of - dt.timedelta(days=1), self.churn_horizon)

    @property
    def clv_fit_cutoff(self) -> dt.date:
        from features.population import latest_complete_cutoff
        return latest_complete_cutoff(self.as_of - dt.timedelta(days=1), self.clv_horizon)


# --- setup ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="YAML config of the pipeline")
    parser.add_argument("--as-of", type=date_argument, required=True, help="YYYY-MM-DD: train on what was known then")
    parser.add_argument("--horizon-days", type=int, help="churn and CLV horizon (default: the config's own)")
    parser.add_argument("--out", type=Path, help="folder of the run (default: outputs/forward/<config>_<as-of> in "
                                                 "the config's project)")
    parser.add_argument("--code-root", type=Path, help="checkout of the project to measure (default: this one)")
    return parser.parse_args(argv)


def date_argument(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def use_code_root(root: Path) -> Path:
    """Put the checkout first on sys.path and check that the project is imported from it."""
    root = root.resolve()
    if not (root / "pipeline" / "cli.py").is_file():
        raise CheckFailed(f"--code-root {root} is not a checkout of churn-pipeline (no pipeline/cli.py).", 2)
    sys.path.insert(0, str(root))
    import pipeline

    if Path(pipeline.__file__).resolve().parent != root / "pipeline":
        raise CheckFailed(f"pipeline was imported from {pipeline.__file__}, not from {root}.", 2)
    return root


def ignore_tracking_environment() -> None:
    """The measurement keeps its own store: a URI in the environment would override it."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        if os.environ.pop(key, None) is not None:
            log.warning("%s is set; ignored: this measurement uses its own store in the --out folder", key)


def make_plan(args: argparse.Namespace, code_root: Path):
    """The Plan and the config of the full data (horizons as measured)."""
    from pipeline.config import load_config, parse_config, project_folder

    cfg = load_config(args.config)
    if args.horizon_days is not None:
        raw = cfg.model_dump(mode="python")
        raw["churn"]["horizon_days"] = raw["clv"]["horizon_days"] = args.horizon_days
        cfg = parse_config(raw, source=f"{args.config} with --horizon-days {args.horizon_days}")
    out = args.out or project_folder(args.config) / "outputs" / "forward" / f"{args.config.stem}_{args.as_of}"
    plan = Plan(args.config.resolve(), args.as_of, out.resolve(), code_root, cfg.churn.horizon_days,
                cfg.clv.horizon_days)
    return plan, cfg


def prepare_out(out: Path) -> None:
    """A new or empty folder, or one this script wrote before (its own entries are replaced)."""
    if out.exists() and not out.is_dir():
        raise CheckFailed(f"--out {out} is a file, not a folder.", 7)
    if out.is_dir() and any(out.iterdir()):
        if not (out / OWNED_MARKER).is_file():
            raise CheckFailed(f"--out {out} holds files this script did not write; give a new or empty folder.", 7)
        for path in [*(out / name for name in OWNED_ENTRIES), *out.glob("*.yaml")]:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / OWNED_MARKER).write_text("written by tests/benchmarks/forward_check.py\n", encoding="utf-8")


def code_version(root: Path) -> str:
    """The checkout's commit, marked dirty when it has uncommitted changes."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


# --- the data as it stood on the as-of date -----------------------------------------------


def truncate_data(source: Path, target: Path, as_of: dt.date, fmt: str) -> dict[str, dict[str, int]]:
    """Copy the tables of `source` into `target` as they stood before `as_of` (see the module
    docstring); return the rows kept of each table."""
    from pipeline.contract import TABLES
    from pipeline.demo import DEMO_MARKER, is_demo_world
    from pipeline.tables import find_table_files

    files = find_table_files(source, fmt)
    if "customers" not in files or "transactions" not in files:
        raise CheckFailed(f"{source} holds no customers and transactions tables (<table>.csv or .parquet).")
    target.mkdir(parents=True)
    cutoff = f"TIMESTAMP '{as_of.isoformat()}'"
    con = duckdb.connect()
    try:
        for name, path in files.items():  # read as the pipeline reads them: CSV cells as text
            con.register(f"src_{name}", con.read_parquet(str(path)) if path.suffix == ".parquet"
                         else con.read_csv(str(path), all_varchar=True))
        queries = {name: _events_before(con, TABLES[name], cutoff) for name in files if TABLES[name].event_time}
        queries["customers"] = _known_customers(con, queries, cutoff)
        kept = {}
        for name, sql in queries.items():
            path = target / files[name].name
            options = "FORMAT parquet" if path.suffix == ".parquet" else "FORMAT csv, HEADER true"
            con.execute(f"COPY ({sql}) TO '{_quoted(path)}' ({options})")
            kept[name] = {"kept": _count(con, sql), "of": _count(con, f"SELECT * FROM src_{name}")}
    finally:
        con.close()
    if is_demo_world(source):  # training compares with the oracle only on a marked world
        shutil.copy2(source / DEMO_MARKER, target / DEMO_MARKER)
        shutil.copytree(source / "truth", target / "truth")
    return kept


def _events_before(con, table, cutoff: str) -> str:
    columns = set(con.execute(f"SELECT * FROM src_{table.name} LIMIT 0").fetchdf().columns)
    replaced = []
    for later, dependents in LATER_FACTS.get(table.name, {}).items():
        if later in columns:
            not_yet = f'TRY_CAST("{later}" AS TIMESTAMP) >= {cutoff}'
            replaced += [f'CASE WHEN {not_yet} THEN NULL ELSE "{c}" END AS "{c}"'
                         for c in (later, *dependents) if c in columns]
    select = f"* REPLACE ({', '.join(replaced)})" if replaced else "*"
    return f'SELECT {select} FROM src_{table.name} WHERE TRY_CAST("{table.event_time}" AS TIMESTAMP) < {cutoff}'


def _known_customers(con, event_queries: dict[str, str], cutoff: str) -> str:
    ids = " UNION ".join(f"SELECT CAST(customer_id AS VARCHAR) FROM ({sql})" for sql in event_queries.values())
    known = f"CAST(customer_id AS VARCHAR) IN ({ids})"
    if "signup_at" in con.execute("SELECT * FROM src_customers LIMIT 0").fetchdf().columns:
        known = f"TRY_CAST(signup_at AS TIMESTAMP) < {cutoff} OR {known}"
    return f"SELECT * FROM src_customers WHERE {known}"


def _count(con, sql: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0])


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def write_config(plan: Plan, cfg) -> Path:
    """DIR/<config name>.yaml: the given YAML with the run's paths in DIR and the default split.
    Edited as text keys, not re-dumped from the typed config, so that another checkout
    (--code-root) reads only keys the given file has."""
    raw = yaml.safe_load(plan.config_path.read_text(encoding="utf-8")) or {}
    out = plan.out
    for section in ("data", "churn", "clv", "training", "model", "tracking", "scoring"):
        raw[section] = dict(raw.get(section) or {})
    raw["data"] |= {"path": str(out / "data"), "quarantine_dir": str(out / "outputs" / "quarantine")}
    if cfg.data.engine_dir is not None:
        raw["data"]["engine_dir"] = str(cfg.data.engine_dir)
    raw["churn"]["horizon_days"], raw["clv"]["horizon_days"] = plan.churn_horizon, plan.clv_horizon
    raw["training"]["validation_cutoff"] = None
    raw["model"]["tuned_params_path"] = str(cfg.model.tuned_params_path)  # the config's project's file
    raw["tracking"] |= {"uri": f"sqlite:///{out / 'mlflow.db'}", "artifact_dir": str(out / "mlartifacts")}
    raw["scoring"]["output_dir"] = str(out / "outputs" / "at_risk")
    path = out / plan.config_path.name  # the same name: a run may be named after its config
    header = f"# {plan.config_path} as of {plan.as_of}, written by tests/benchmarks/forward_check.py\n"
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


# --- training ------------------------------------------------------------------------------


def train(plan: Plan, config: Path) -> float:
    """`churn train --promote force` in a child process of the measured checkout; return its
    wall seconds. Its output goes to stderr and DIR/train.log."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(plan.code_root),
                                                                      os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "pipeline.cli", "train", "--config", str(config), "--promote", "force"]
    log.info("training: %s (log: %s)", " ".join(command[1:]), plan.out / "train.log")
    tail: list[str] = []
    started = time.perf_counter()
    with open(plan.out / "train.log", "w", encoding="utf-8") as logfile:
        child = subprocess.Popen(command, cwd=plan.code_root, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        for line in child.stdout:
            logfile.write(line)
            sys.stderr.write("  | " + line)
            tail = (tail + [line.rstrip()])[-8:]
        code = child.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        said = [line for line in tail if " ERROR " in line] or tail  # its own one-paragraph reason, if it gave one
        raise CheckFailed(f"`churn train` failed with exit code {code} after {seconds:.0f} s:\n" + "\n".join(said)
                          + f"\n(the whole log is {plan.out / 'train.log'})", code)
    return seconds


def champions(config: Path) -> tuple[object, object, dict]:
    """The fitted churn and CLV champions of the run's store, and what the training run's
    walk-forward backtest reported for them (the means over its origins)."""
    from mlflow import MlflowClient

    from pipeline.config import load_config
    from pipeline.tracking import load_champions

    cfg = load_config(config)
    churn, clv = load_champions(cfg.tracking)
    client = MlflowClient(tracking_uri=cfg.tracking.uri, registry_uri=cfg.tracking.uri)
    run_id = getattr(churn, "training_run_id", "") or churn.run_id  # older checkouts: one run for both
    metrics = client.get_run(run_id).data.metrics
    validation = {"churn_roc_auc": metrics.get("churn_roc_auc"), "churn_ece": metrics.get("churn_ece"),
                  "clv_spearman": metrics.get("clv_spearman"),
                  "clv_aggregate_error_pct": metrics.get("clv_aggregate_error_pct"), "run_id": run_id,
                  "versions": {churn.name: churn.version, clv.name: clv.version}}
    return churn.fitted, clv.fitted, validation


# --- the rows of the as-of date ------------------------------------------------------------


def open_tables(cfg, data_path: Path | None = None):
    from pipeline.tables import load_tables

    d = cfg.data
    return load_tables(data_path or d.path, dt.datetime.now(), None, d.format, d.engine_memory_gb, d.engine_dir)


def forward_frame(plan: Plan, cfg) -> tuple[pd.DataFrame, dt.date]:
    """From the full data: features and labels at the as-of date and at the baselines' fitting
    cutoffs, and the data's last day."""
    from features.model_input import build_training_frame
    from features.population import label_window_complete

    tables = open_tables(cfg)
    try:
        data_end = tables.last_event_at().date()
        for name, horizon in (("churn", plan.churn_horizon), ("CLV", plan.clv_horizon)):
            if not label_window_complete(plan.as_of, horizon, data_end):
                raise CheckFailed(f"The data ends on {data_end}: the {horizon}-day {name} window after {plan.as_of} "
                                  f"is not over yet. Choose an as-of date on or before "
                                  f"{data_end + dt.timedelta(days=1 - max(plan.churn_horizon, plan.clv_horizon))}.")
        cutoffs = sorted({plan.as_of, plan.churn_fit_cutoff, plan.clv_fit_cutoff})
        frame = build_training_frame(tables, cfg, cutoffs)
    finally:
        tables.close()
    for cutoff in cutoffs:
        if not (frame["cutoff_date"].dt.date == cutoff).any():
            role = "the as-of date" if cutoff == plan.as_of else "the baselines' fitting cutoff, a horizon before it"
            raise CheckFailed(f"No customer is active at {cutoff} ({role}) in {cfg.data.path}: the as-of date "
                              f"{plan.as_of} is too early for this data.")
    return frame, data_end


def rows_at(frame: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    return frame[frame["cutoff_date"].dt.date == cutoff].sort_values("customer_id").reset_index(drop=True)


def truncated_run_view(rows: pd.DataFrame, config: Path, as_of: dt.date) -> tuple[dict, dict]:
    """From the truncated copy: the cutoffs `churn train` used there, and the as-of features
    built again (what the user would score), compared with the rows from the full data."""
    from features.model_input import features_at, plan_cutoffs
    from pipeline.config import load_config

    cfg = load_config(config)
    tables = open_tables(cfg)
    try:
        data_end = tables.last_event_at().date()
        again = features_at(tables, cfg, as_of).sort_values("customer_id").reset_index(drop=True)
    finally:
        tables.close()
    cutoffs = {"data_end": data_end.isoformat()}
    try:  # for the record only: how the checkout plans its cutoffs is its own business
        cutoffs |= {name: plan_cutoffs(data_end, cfg.training, horizon).as_dict()
                    for name, horizon in (("churn", cfg.churn.horizon_days), ("clv", cfg.clv.horizon_days))}
    except (TypeError, AttributeError, ValueError) as exc:
        log.warning("the training cutoffs are not recorded: %s", exc)
    if again["customer_id"].astype(str).tolist() != rows["customer_id"].astype(str).tolist():
        return cutoffs, {"same_customers": False, "rows_truncated": len(again), "differing_columns": None}
    differing = [c for c in again.columns if c not in ("customer_id", "cutoff_date") and not _same(rows[c], again[c])]
    return cutoffs, {"same_customers": True, "differing_columns": differing}


def _same(a: pd.Series, b: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
        return bool(np.allclose(a.to_numpy(float), b.to_numpy(float), rtol=1e-6, atol=1e-9, equal_nan=True))
    return a.astype(object).where(a.notna(), None).tolist() == b.astype(object).where(b.notna(), None).tolist()


# --- metrics -------------------------------------------------------------------------------


def churn_summary(y: np.ndarray, prob: np.ndarray) -> dict:
    from models.metrics import churn_metrics

    m = churn_metrics(y, prob)
    return {"roc_auc": m["roc_auc"], "pr_auc": m["pr_auc"], "ece": m["ece"], "brier": m["brier"],
            "mean_predicted": float(np.mean(prob)), "realised_rate": float(np.mean(y))}


def clv_summary(y: np.ndarray, pred: np.ndarray) -> dict:
    from models.metrics import clv_metrics

    m = clv_metrics(y, pred)
    return {"spearman": m["spearman"], "gini": m["normalized_gini"], "aggregate_error_pct": m["aggregate_error_pct"],
            "predicted_total": float(np.sum(pred)), "realised_total": float(np.sum(y))}


def ranking_summary(y: np.ndarray, score: np.ndarray) -> dict:
    """ROC and PR AUC of a score that ranks (missing scores rank lowest, as in training)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    score = np.asarray(score, float)
    filled = np.where(np.isnan(score), np.nanmin(score) if np.isfinite(score).any() else 0.0, score)
    return {"roc_auc": float(roc_auc_score(y, filled)), "pr_auc": float(average_precision_score(y, filled))}


def baselines(plan: Plan, frame: pd.DataFrame, rows: pd.DataFrame, seed: int) -> dict:
    """Simple models fitted on the latest cutoff whose labels were known before the as-of
    date, scored on the as-of rows."""
    import lightgbm as lgb
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from models.lifetime import LifetimeModel

    churn_fit = rows_at(frame, plan.churn_fit_cutoff).dropna(subset=["is_churned"])
    clv_fit = rows_at(frame, plan.clv_fit_cutoff).dropna(subset=["future_revenue"])
    y, revenue = rows["is_churned"].to_numpy(int), rows["future_revenue"].to_numpy(float)
    x = rows[RFM_FEATURES].astype(float)

    logistic = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             LogisticRegression(C=LOGISTIC_C, max_iter=2000, random_state=seed))
    logistic.fit(churn_fit[RFM_FEATURES].astype(float), churn_fit["is_churned"].astype(int))
    tweedie = lgb.LGBMRegressor(**TWEEDIE_PARAMS, random_state=seed)
    tweedie.fit(clv_fit[RFM_FEATURES].astype(float), clv_fit["future_revenue"].clip(lower=0))
    churn_lifetime = LifetimeModel.fit(churn_fit, plan.churn_horizon, plan.clv_horizon)
    clv_lifetime = LifetimeModel.fit(clv_fit, plan.churn_horizon, plan.clv_horizon)

    no_purchase = churn_lifetime.features(rows)["bgnbd_probability_no_purchase"].to_numpy(float)
    gamma_gamma = clv_lifetime.features(rows)["bgnbd_gamma_gamma_clv"].fillna(0).to_numpy(float)
    churn_rows = {"fit_cutoff": plan.churn_fit_cutoff.isoformat(), "fit_rows": len(churn_fit)}
    clv_rows = {"fit_cutoff": plan.clv_fit_cutoff.isoformat(), "fit_rows": len(clv_fit)}
    return {
        "features": RFM_FEATURES,
        "logistic_rfm": churn_rows | churn_summary(y, logistic.predict_proba(x)[:, 1]),
        "bgnbd_no_purchase": churn_rows | ranking_summary(y, no_purchase),
        "lightgbm_tweedie_rfm": clv_rows | clv_summary(revenue, np.clip(tweedie.predict(x), 0, None)),
        "bgnbd_gamma_gamma": clv_rows | clv_summary(revenue, gamma_gamma),
    }


def oracle(plan: Plan, cfg, rows: pd.DataFrame, model_prob: np.ndarray) -> dict:
    """On a demo world: the true churn probability's AUC on the same rows, and the model's share."""
    from sklearn.metrics import roc_auc_score

    from pipeline.demo import is_demo_world
    from pipeline.demo.truth import oracle_for

    if not is_demo_world(cfg.data.path):
        return {}
    truth = oracle_for(cfg.data.path, rows["customer_id"], plan.as_of, plan.churn_horizon)
    known = np.isfinite(truth)
    y = rows["is_churned"].to_numpy(int)[known]
    oracle_auc = float(roc_auc_score(y, truth[known]))
    model_auc = float(roc_auc_score(y, model_prob[known]))
    result = {"oracle_roc_auc": oracle_auc, "auc_share_of_oracle": model_auc / oracle_auc}
    if not known.all():
        result["oracle_rows"] = int(known.sum())  # the share is on these rows only
    return result


# --- the measurement -----------------------------------------------------------------------


def measure(plan: Plan, cfg) -> dict:
    """The whole measurement; returns the result object."""
    log.info("forward check of %s as of %s (code %s)", plan.config_path, plan.as_of, plan.code_root)
    frame, data_end = forward_frame(plan, cfg)
    rows = rows_at(frame, plan.as_of)
    prepare_out(plan.out)
    kept = truncate_data(cfg.data.path, plan.out / "data", plan.as_of, cfg.data.format)
    config = write_config(plan, cfg)
    seconds = train(plan, config)
    churn_model, clv_model, validation = champions(config)
    training_cutoffs, features_match = truncated_run_view(rows, config, plan.as_of)
    prob, clv = churn_model.predict(rows), clv_model.predict(rows)
    y, revenue = rows["is_churned"].to_numpy(int), rows["future_revenue"].to_numpy(float)
    return {
        "config": str(plan.config_path), "as_of": plan.as_of.isoformat(), "code_root": str(plan.code_root),
        "code_version": code_version(plan.code_root), "data_end": data_end.isoformat(),
        "churn_horizon_days": plan.churn_horizon, "clv_horizon_days": plan.clv_horizon,
        "train_seconds": seconds, "rows": len(rows), "truncated_tables": kept,
        "training": training_cutoffs, "training_reported": validation, "features_match_truncated": features_match,
        "churn": churn_summary(y, prob), "clv": clv_summary(revenue, clv),
        "baselines": baselines(plan, frame, rows, cfg.model.seed),
        **oracle(plan, cfg, rows, prob),
    }


def rounded(value):
    if isinstance(value, float):
        return round(value, 4) if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code_root = use_code_root(args.code_root or SCRIPT_ROOT)
        from models.errors import ModelDataError
        from pipeline.errors import PipelineError
        from pipeline.logs import setup_logging

        setup_logging()
        logging.captureWarnings(True)  # the models' fitting warnings as one log line each
        ignore_tracking_environment()
        try:
            plan, cfg = make_plan(args, code_root)
            result = rounded(measure(plan, cfg))
        except (PipelineError, ModelDataError) as exc:  # the project's expected failures, in its words
            raise CheckFailed(str(exc), getattr(exc, "exit_code", 3)) from exc
    except CheckFailed as exc:
        print(f"forward_check: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("forward_check: stopped before it finished.", file=sys.stderr)
        return 130
    text = json.dumps(result, indent=2)
    (plan.out / "forward.json").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
