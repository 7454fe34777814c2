"""How the cost of the nightly job and of the training stack grows with the customers.

    python tests/benchmarks/bench_growth.py --customers 100000 --customers 300000 \
        --customers 1000000 [--customers 3000000] --out DIR

For each size, the world is DIR/<customers>/world (generated when missing or of another
size, as bench_features.py and bench_scoring.py keep theirs) and each measurement runs in a
fresh child process (its own peak memory):
- nightly: `churn score`'s work, validation included: load_tables, then run_scoring as of the
           day after the data (features, both champions, reasons, the list's files), with the
           champions bench_scoring.py trains on a small world (DIR/train_<n>);
- stack:   load_tables, then build_training_frame for 12 monthly cutoffs (spine, every
           stage, both labels); the seconds exclude validation;
and each child first times the bare DuckDB RFM query over its world's transactions (the
reference), so every figure is also given in units of the reference timed beside it.
The slope of log(seconds) against log(customers), fitted by least squares over the sizes,
says how cost grows: 1.0 is linear (the target is at most 1.1). It is fitted on the seconds
and on the reference units (where the reference itself grows with the data, the units
slope is the excess over the bare query's own growth).

Prints progress lines and a table; writes DIR/growth.json and DIR/growth.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import Clock, code_version, duckdb_rfm, monthly_cutoffs, peak_gb  # noqa: E402

STEPS = ("nightly", "stack")
SLOPE_TARGET = 1.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()
    if args.child:
        print(json.dumps(run_child(args.child, args)), flush=True)
        return
    sizes = sorted(set(args.customers))
    results: dict = {"code": code_version(), "sizes": {}}
    for customers in sizes:
        prepare(args, customers)
        results["sizes"][customers] = {}
        for step in STEPS:
            print(f"[{customers:,} customers] {step} ...", flush=True)
            measured = in_child(step, args, customers)
            results["sizes"][customers][step] = measured
            print("   " + describe(measured), flush=True)
    results["slopes"] = slopes(results["sizes"])
    text = report(results)
    print("\n" + text, flush=True)
    (args.out / "growth.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "growth.md").write_text(text)


def prepare(args: argparse.Namespace, customers: int) -> None:
    """The world of this size and the champions, as bench_scoring.py prepares them."""
    from bench_scoring import prepare_worlds

    prepare_worlds(argparse.Namespace(customers=customers, out=args.out, seed=args.seed,
                                      train_customers=args.train_customers), args.out / str(customers))


def in_child(step: str, args: argparse.Namespace, customers: int) -> dict:
    command = [sys.executable, __file__, "--child", step, "--customers", str(customers), "--out", str(args.out),
               "--seed", str(args.seed), "--train-customers", str(args.train_customers)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": "\n".join(done.stderr.strip().splitlines()[-12:])}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(step: str, args: argparse.Namespace) -> dict:
    from bench_scoring import config

    from features.model_input import build_training_frame
    from features.population import latest_complete_cutoff
    from pipeline.score import run_scoring
    from pipeline.tables import load_tables

    customers = args.customers[0]
    world = args.out / str(customers) / "world"
    cfg = config(argparse.Namespace(out=args.out, customers=customers, train_customers=args.train_customers))
    result: dict = {}
    clock = Clock()
    duckdb_rfm(world)
    clock.into(result, "reference_")
    clock = Clock()
    tables = load_tables(world, dt.datetime.now(), cfg.data.quarantine_dir, "parquet")
    clock.into(result, "validate_")
    if step == "nightly":
        manifest = run_scoring(tables, cfg, tables.last_event_at().date() + dt.timedelta(days=1))
        clock.into(result)  # validation included: the whole nightly job
        result["rows"] = manifest["customers_scored"]
    else:
        clock = Clock()
        cutoff = latest_complete_cutoff(tables.last_event_at().date(), cfg.churn.horizon_days)
        frame = build_training_frame(tables, cfg, monthly_cutoffs(cutoff, 12))
        clock.into(result)
        result["rows"] = len(frame)
    tables.close()
    result["peak_gb"] = peak_gb()
    return result


def describe(result: dict) -> str:
    if "error" in result:
        return f"failed: {result['error']}"
    return (f"{result['seconds']:.1f} s = {result['seconds'] / result['reference_seconds']:.1f}x the bare RFM "
            f"query ({result['reference_seconds']:.1f} s); {result['rows']:,} rows; peak {result['peak_gb']:.2f} GB")


def fitted_slope(points: list[tuple[float, float]]) -> float | None:
    """The least-squares slope of log(y) on log(x); None with fewer than two sizes."""
    if len(points) < 2:
        return None
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def slopes(sizes: dict) -> dict:
    out = {}
    for step in STEPS:
        done = [(n, m[step]) for n, m in sizes.items() if "seconds" in m[step]]
        out[step] = {"seconds": fitted_slope([(n, r["seconds"]) for n, r in done]),
                     "reference_units": fitted_slope([(n, r["seconds"] / r["reference_seconds"]) for n, r in done]),
                     "reference": fitted_slope([(n, r["reference_seconds"]) for n, r in done])}
    return out


def report(results: dict) -> str:
    lines = [f"# How cost grows with customers; code {results['code']}", "",
             "| customers | step | seconds | x bare RFM query | rows | peak GB |", "|---:|---|---:|---:|---:|---:|"]
    for customers, measured in results["sizes"].items():
        for step, r in measured.items():
            if "error" in r:
                lines.append(f"| {int(customers):,} | {step} | failed | | | |")
                continue
            lines.append(f"| {int(customers):,} | {step} | {r['seconds']:.1f} | "
                         f"{r['seconds'] / r['reference_seconds']:.1f}x | {r['rows']:,} | {r['peak_gb']:.2f} |")
    lines += ["", f"| step | log-log slope of seconds (target <= {SLOPE_TARGET}) | of reference units | "
              "of the bare query itself |", "|---|---:|---:|---:|"]
    for step, slope in results["slopes"].items():
        shown = ["n/a" if v is None else f"{v:.2f}" for v in (slope["seconds"], slope["reference_units"],
                                                             slope["reference"])]
        lines.append(f"| {step} | {' | '.join(shown)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
