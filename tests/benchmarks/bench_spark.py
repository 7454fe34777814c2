"""Benchmark the Spark engine beside DuckDB on the same demo world, in the same run.

    python tests/benchmarks/bench_spark.py --customers 1000000 --out DIR [--master local[2]]

The world is DIR/<customers>/world, where bench_features.py keeps its own (`make bench`
passes $(BENCH_DIR)/features); it is generated there when it is missing or of another size.
Each measurement runs in a fresh child process (its own peak memory, a cold engine):
- duckdb_one / spark_one:   validation, then the active spine and every feature stage for
                            the latest complete cutoff (features_at);
- duckdb_stack / spark_stack: validation, then build_training_frame for 12 monthly cutoffs
                            (spine, every stage, both labels);
- duckdb_score / spark_score: validation, then the nightly job as of the day after the data
                            (run_scoring: features, both champions, reasons, the list's files;
                            on Spark through the MLflow Spark UDFs, plus the list by date).
                            The champions are those bench_scoring.py trains on a small world
                            of the same generator (DIR/train_<n>), trained here when missing.
Each child reports the validation seconds and the feature seconds apart (Spark's session
start is in its validation), and a checksum of the frame, so that the two engines are seen
to build the same thing. The machine is shared and its speed drifts: the ratio that counts is
Spark over DuckDB for the same step, the children run alternately (duckdb, spark, duckdb,
spark) and the table gives each side's seconds with the ratio.

Prints progress lines and a table; writes DIR/<customers>/spark.json and spark.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import code_version, cpu_seconds, monthly_cutoffs, world_matches  # noqa: E402

STEPS = ("duckdb_one", "spark_one", "duckdb_stack", "spark_stack", "duckdb_score", "spark_score")
KINDS = {"one": "one cutoff", "stack": "12-cutoff stack", "score": "nightly scoring"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g", help="spark.driver.memory (local[N]: the whole Spark)")
    parser.add_argument("--train-customers", type=int, default=20_000, help="the champions' world (bench_scoring.py)")
    parser.add_argument("--steps", default=",".join(STEPS), help="a comma-separated subset of " + ", ".join(STEPS))
    parser.add_argument("--child")
    args = parser.parse_args()
    world = args.out / str(args.customers) / "world"
    if args.child:
        print(json.dumps(run_child(args.child, world, args)), flush=True)
        return
    steps = [step for step in args.steps.split(",") if step]
    if unknown := sorted(set(steps) - set(STEPS)):
        parser.error(f"unknown steps {unknown}: choose from {', '.join(STEPS)}")
    if not world_matches(world, args.customers, args.seed):
        print(f"generating a world of {args.customers:,} customers in {world} ...", flush=True)
        from pipeline.demo.world import generate_world

        generate_world(world, n_customers=args.customers, seed=args.seed, fmt="parquet", replace=True)
    if any(step.endswith("_score") for step in steps):
        ensure_champions(args)
    results = {"customers": args.customers, "master": args.master, "driver_memory": args.driver_memory,
               "code": code_version(), "steps": {}}
    for number, step in enumerate(steps, start=1):
        print(f"[{number}/{len(steps)}] {step} ...", flush=True)
        results["steps"][step] = in_child(step, args)
        print("   " + describe(results["steps"][step]), flush=True)
    report(results, args.out / str(args.customers))


def in_child(step: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", step, "--customers", str(args.customers), "--out",
               str(args.out), "--seed", str(args.seed), "--master", args.master,
               "--driver-memory", args.driver_memory, "--train-customers", str(args.train_customers)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": "\n".join(done.stderr.strip().splitlines()[-12:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_champions(args: argparse.Namespace) -> None:
    """The champions bench_scoring.py trains (on a small world of the same generator)."""
    from bench_scoring import prepare_worlds

    prepare_worlds(argparse.Namespace(customers=args.customers, out=args.out.resolve(), seed=args.seed,
                                      train_customers=args.train_customers), args.out.resolve() / str(args.customers))


def step_config(step: str, world: Path, args: argparse.Namespace):
    """The default config on the world, on the step's engine; scoring with bench_scoring's
    champions and its outputs in the world's scratch folder, one per engine."""
    from bench_scoring import config as scoring_config

    from pipeline.config import load_config

    engine = step.split("_")[0]
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "configs" / "default.yaml", data_dir=world)
    data = cfg.data.model_copy(update={"engine": engine, "format": "parquet",
                                       "spark": cfg.data.spark.model_copy(update={
                                           "master": args.master, "options": {"spark.driver.memory": args.driver_memory}})})
    update = {"data": data}
    if step.endswith("_score"):
        scoring = scoring_config(argparse.Namespace(out=args.out.resolve(), customers=args.customers,
                                                    train_customers=args.train_customers))
        update |= {"tracking": scoring.tracking, "scoring": cfg.scoring.model_copy(
            update={"output_dir": world.parent / f"at_risk_{engine}"})}
    return cfg.model_copy(update=update)


def run_child(step: str, world: Path, args: argparse.Namespace) -> dict:
    from features.model_input import build_training_frame, features_at
    from features.population import latest_complete_cutoff
    from pipeline.engines import open_tables
    from pipeline.score import run_scoring

    cfg = step_config(step, world, args)
    result: dict = {"step": step}
    began, cpu = time.perf_counter(), cpu_seconds()
    tables = open_tables(cfg.data, dt.datetime.now(), None)
    result["validate_seconds"] = time.perf_counter() - began
    cutoff = latest_complete_cutoff(tables.last_event_at().date(), cfg.churn.horizon_days)
    began = time.perf_counter()
    if step.endswith("_score"):
        from bench_scoring import StageTimes

        times = StageTimes()
        logging.getLogger().addHandler(times)
        logging.getLogger().setLevel(logging.INFO)
        as_of = tables.last_event_at().date() + dt.timedelta(days=1)
        manifest = run_scoring(tables, cfg, as_of)
        result["stages"] = times.seconds
        result["seconds"] = time.perf_counter() - began
        listing = pd.read_parquet(cfg.scoring.output_dir / as_of.isoformat() / "at_risk.parquet")
        result["rows"], result["columns"] = manifest["customers_scored"], listing.shape[1]
        result["checksum"] = float(listing["churn_probability"].sum() + listing["predicted_clv"].sum())
        result["per_tier"] = manifest["customers_per_tier"]
    else:
        frame = features_at(tables, cfg, cutoff) if step.endswith("_one") else build_training_frame(
            tables, cfg, monthly_cutoffs(cutoff, 12))
        result["seconds"] = time.perf_counter() - began
        result["rows"], result["columns"] = len(frame), frame.shape[1]
        numeric = frame.select_dtypes("number")
        result["checksum"] = float(numeric.fillna(0).to_numpy().sum())
    result["cpu_seconds"] = cpu_seconds() - cpu  # the driver's: Spark's executors run in the JVM
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    tables.close()
    return result


def describe(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    work = "scoring" if result["step"].endswith("_score") else "features"
    return (f"validate {result['validate_seconds']:.1f} s, {work} {result['seconds']:.1f} s, "
            f"{result['rows']:,} rows x {result['columns']} columns, checksum {result['checksum']:.6g}, "
            f"driver peak {result['peak_gb']:.2f} GB")


def report(results: dict, folder: Path) -> None:
    steps = results["steps"]
    lines = [f"# Spark ({results['master']}, driver memory {results['driver_memory']}) beside DuckDB, {results['customers']:,} customers; code {results['code']}",
             "", "| step | DuckDB s | Spark s | Spark / DuckDB | same frame |", "|---|---:|---:|---:|---|"]
    for kind, name in KINDS.items():
        duck, spark = steps.get(f"duckdb_{kind}", {}), steps.get(f"spark_{kind}", {})
        if "seconds" not in duck or "seconds" not in spark:
            lines.append(f"| {name} | {'failed' if 'error' in duck else 'not run'} | "
                         f"{'failed' if 'error' in spark else 'not run'} | | |")
            continue
        same = duck["rows"] == spark["rows"] and abs(duck["checksum"] - spark["checksum"]) <= 1e-6 * max(
            1.0, abs(duck["checksum"]))
        for part, key in (("validate", "validate_seconds"), ("scoring" if kind == "score" else "features", "seconds")):
            lines.append(f"| {name}: {part} | {duck[key]:.1f} | {spark[key]:.1f} | {spark[key] / duck[key]:.1f}x | "
                         f"{'yes' if same else 'NO'} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark.json").write_text(json.dumps(results, indent=2))
    (folder / "spark.md").write_text(text)


if __name__ == "__main__":
    main()
