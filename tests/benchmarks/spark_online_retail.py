"""Run `churn features`, `churn train` and `churn score` on the real Online Retail log with
`data.engine: duckdb` and with `data.engine: spark`, and check that both give the same things.

    python tests/benchmarks/spark_online_retail.py --out DIR [--master local[2]]

For each engine, DIR/<engine>/online_retail.yaml is configs/online_retail.yaml with the
engine set and the tracking store, artifacts, quarantine and list in DIR/<engine>; the three
commands run as a user runs them (`python -m pipeline.cli`, in a child process, timed):
- features as of 2011-09-01 (the Online Retail README's test date) into features.parquet;
- train (the walk-forward backtest, both models, promotion);
- score as of 2011-12-10, the day after the log ends.
Then: the two feature frames are compared column by column (integers and text exactly, floats
within 1e-6 relative), every metric the training runs logged (the backtests' figures,
candidates, champions; not their timings) and the two at-risk lists (same customers in the same order, probabilities
within 1e-9, the same tiers and reasons). Prints a table and writes DIR/online_retail_spark.json
and .md. Exit code 0 when everything is the same on both engines, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ("duckdb", "spark")
FEATURES_AS_OF, SCORE_AS_OF = "2011-09-01", "2011-12-10"
LIST_COLUMNS_EXACT = ("customer_id", "risk_tier", "top_reasons", "recommended_action")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    out = args.out.resolve()
    runs = {}
    for engine in ENGINES:
        folder = out / engine
        if folder.exists() and any(folder.iterdir()):
            sys.exit(f"{folder} is not empty: pass a new --out folder (this script never deletes one)")
        folder.mkdir(parents=True, exist_ok=True)
        config = write_config(folder, engine, args.master)
        runs[engine] = {name: run(command, config, folder, name) for name, command in (
            ("features", ["features", "--as-of", FEATURES_AS_OF, "--out", str(folder / "features.parquet")]),
            ("train", ["train", "--promote", "force"]),
            ("score", ["score", "--as-of", SCORE_AS_OF]))}
    results = {"master": args.master, "runs": runs, "same": compare(out)}
    text = report(results)
    print(text, flush=True)
    (out / "online_retail_spark.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "online_retail_spark.md").write_text(text)
    sys.exit(0 if all(results["same"].values()) else 1)


def write_config(folder: Path, engine: str, master: str) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "online_retail.yaml").read_text())
    raw["data"] |= {"path": str(ROOT / raw["data"]["path"]), "engine": engine,
                    "quarantine_dir": str(folder / "quarantine"), "spark": {"master": master}}
    raw["model"]["tuned_params_path"] = str(ROOT / raw["model"]["tuned_params_path"])
    raw["tracking"] |= {"uri": f"sqlite:///{folder / 'mlflow.db'}", "artifact_dir": str(folder / "mlartifacts")}
    raw["scoring"]["output_dir"] = str(folder / "at_risk")
    path = folder / "online_retail.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run(command: list[str], config: Path, folder: Path, name: str) -> dict:
    print(f"{folder.name}: churn {' '.join(command)} ...", flush=True)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    began = time.perf_counter()
    with open(folder / f"{name}.log", "w") as log:
        done = subprocess.run([sys.executable, "-m", "pipeline.cli", *command, "--config", str(config)],
                              stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=environment)
    seconds = time.perf_counter() - began
    print(f"   exit {done.returncode} in {seconds:.1f} s (log: {folder / f'{name}.log'})", flush=True)
    return {"exit_code": done.returncode, "seconds": seconds}


def compare(out: Path) -> dict[str, bool]:
    same = {}
    frames = [pd.read_parquet(out / engine / "features.parquet") for engine in ENGINES]
    same["features"] = same_frames(*frames)
    metrics = [forward_metrics(out / engine) for engine in ENGINES]
    same["backtest metrics"] = bool(metrics[0]) and metrics[0].keys() == metrics[1].keys() and all(
        np.isclose(metrics[0][key], metrics[1][key], rtol=1e-9, atol=1e-12) for key in metrics[0])
    lists = [pd.read_parquet(out / engine / "at_risk" / SCORE_AS_OF / "at_risk.parquet") for engine in ENGINES]
    same["at-risk list"] = len(lists[0]) > 0 and list(lists[0].columns) == list(lists[1].columns) and all(
        lists[0][column].equals(lists[1][column]) for column in LIST_COLUMNS_EXACT) and np.allclose(
        lists[0]["churn_probability"], lists[1]["churn_probability"], rtol=0, atol=1e-9)
    return same


def same_frames(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    if list(left.columns) != list(right.columns) or len(left) != len(right) or len(left) == 0:
        return False
    for column in left.columns:
        if pd.api.types.is_float_dtype(left[column]):
            a, b = left[column].to_numpy(float), right[column].to_numpy(float)
            if not np.allclose(a, b, rtol=1e-6, atol=0, equal_nan=True):
                return False
        elif not left[column].equals(right[column]):
            return False
    return True


def forward_metrics(folder: Path) -> dict[str, float]:
    """Every metric of every run in the engine's store but timings, keyed by run name."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    found = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            for key, value in run.data.metrics.items():
                if "seconds" not in key:
                    found[f"{run.info.run_name}/{key}"] = value
    return found


def report(results: dict) -> str:
    runs = results["runs"]
    lines = [f"# Online Retail: churn features, train and score on DuckDB and on Spark ({results['master']})", "",
             "| command | DuckDB s | Spark s | Spark / DuckDB |", "|---|---:|---:|---:|"]
    for name in ("features", "train", "score"):
        duck, spark = runs["duckdb"][name], runs["spark"][name]
        if duck["exit_code"] or spark["exit_code"]:
            lines.append(f"| {name} | exit {duck['exit_code']} | exit {spark['exit_code']} | |")
            continue
        lines.append(f"| {name} | {duck['seconds']:.1f} | {spark['seconds']:.1f} | "
                     f"{spark['seconds'] / duck['seconds']:.1f}x |")
    lines += ["", "| the same on both engines | |", "|---|---|"]
    lines += [f"| {what} | {'yes' if same else 'NO'} |" for what, same in results["same"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
