"""Benchmark the Spark engine beside DuckDB on the same demo world, in the same run.

    python tests/benchmarks/bench_spark.py --customers 1000000 --out DIR [--master local[2]]

The world is DIR/<customers>/world, where bench_features.py keeps its own (`make bench`
passes $(BENCH_DIR)/features); it is generated there when it is missing or of another size.
Each measurement runs in a fresh child process (its own peak memory, a cold engine):
- duckdb_one / spark_one:   validation, then the active spine and every feature stage for
                            the latest complete cutoff (features_at);
- duckdb_stack / spark_stack: validation, then build_training_frame for 12 monthly cutoffs
                            (spine, every stage, both labels).
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
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import code_version, cpu_seconds, monthly_cutoffs, world_matches  # noqa: E402

STEPS = ("duckdb_one", "spark_one", "duckdb_stack", "spark_stack")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--child")
    args = parser.parse_args()
    world = args.out / str(args.customers) / "world"
    if args.child:
        print(json.dumps(run_child(args.child, world, args.master)), flush=True)
        return
    if not world_matches(world, args.customers, args.seed):
        print(f"generating a world of {args.customers:,} customers in {world} ...", flush=True)
        from pipeline.demo.world import generate_world

        generate_world(world, n_customers=args.customers, seed=args.seed, fmt="parquet", replace=True)
    results = {"customers": args.customers, "master": args.master, "code": code_version(), "steps": {}}
    for number, step in enumerate(STEPS, start=1):
        print(f"[{number}/{len(STEPS)}] {step} ...", flush=True)
        results["steps"][step] = in_child(step, args)
        print("   " + describe(results["steps"][step]), flush=True)
    report(results, args.out / str(args.customers))


def in_child(step: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", step, "--customers", str(args.customers), "--out",
               str(args.out), "--seed", str(args.seed), "--master", args.master]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": "\n".join(done.stderr.strip().splitlines()[-12:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(step: str, world: Path, master: str) -> dict:
    from features.model_input import build_training_frame, features_at
    from features.population import latest_complete_cutoff
    from pipeline.config import load_config
    from pipeline.engines import open_tables

    root = Path(__file__).resolve().parents[2]
    engine = step.split("_")[0]
    cfg = load_config(root / "configs" / "default.yaml", data_dir=world)
    data = cfg.data.model_copy(update={"engine": engine, "spark": cfg.data.spark.model_copy(update={"master": master})})
    cfg = cfg.model_copy(update={"data": data})
    result: dict = {"step": step}
    began, cpu = time.perf_counter(), cpu_seconds()
    tables = open_tables(cfg.data, dt.datetime.now(), None)
    result["validate_seconds"] = time.perf_counter() - began
    cutoff = latest_complete_cutoff(tables.last_event_at().date(), cfg.churn.horizon_days)
    began = time.perf_counter()
    if step.endswith("_one"):
        frame = features_at(tables, cfg, cutoff)
    else:
        frame = build_training_frame(tables, cfg, monthly_cutoffs(cutoff, 12))
    result["seconds"] = time.perf_counter() - began
    result["cpu_seconds"] = cpu_seconds() - cpu  # the driver's: Spark's executors run in the JVM
    result["rows"], result["columns"] = len(frame), frame.shape[1]
    numeric = frame.select_dtypes("number")
    result["checksum"] = float(numeric.fillna(0).to_numpy().sum())
    result["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    tables.close()
    return result


def describe(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    return (f"validate {result['validate_seconds']:.1f} s, features {result['seconds']:.1f} s, "
            f"{result['rows']:,} rows x {result['columns']} columns, checksum {result['checksum']:.6g}, "
            f"driver peak {result['peak_gb']:.2f} GB")


def report(results: dict, folder: Path) -> None:
    steps = results["steps"]
    lines = [f"# Spark ({results['master']}) beside DuckDB, {results['customers']:,} customers; code {results['code']}",
             "", "| step | DuckDB s | Spark s | Spark / DuckDB | same frame |", "|---|---:|---:|---:|---|"]
    for kind in ("one", "stack"):
        duck, spark = steps[f"duckdb_{kind}"], steps[f"spark_{kind}"]
        if "error" in duck or "error" in spark:
            lines.append(f"| {kind} | failed | failed | | |")
            continue
        same = duck["rows"] == spark["rows"] and abs(duck["checksum"] - spark["checksum"]) <= 1e-6 * max(
            1.0, abs(duck["checksum"]))
        for part, key in (("validate", "validate_seconds"), ("features", "seconds")):
            lines.append(f"| {kind} {part} | {duck[key]:.1f} | {spark[key]:.1f} | {spark[key] / duck[key]:.1f}x | "
                         f"{'yes' if same else 'NO'} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text, flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark.json").write_text(json.dumps(results, indent=2))
    (folder / "spark.md").write_text(text)


if __name__ == "__main__":
    main()
