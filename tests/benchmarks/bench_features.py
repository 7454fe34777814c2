"""Benchmark validation and feature building on a large demo world.

    python tests/benchmarks/bench_features.py --customers 1000000 --out DIR [--keep]

The world is generated once into DIR/<customers>/world (skipped when a world of that size
and seed is already there, so reruns are cheap). Each measurement then runs in a fresh
child process, so that its peak memory (ru_maxrss, whole child) is its own; the peak of
the step after validation is reported too:
- validate:   load_tables on the world (the validation pass every run starts with);
- one_cutoff: active spine + every feature stage for one cutoff;
- stack_12:   build_training_frame for 12 monthly cutoffs (spine, every stage, both labels);
- rfm_stage:  only the RFM stage, for the one-cutoff spine;
- duckdb_rfm: reference, a bare DuckDB query of the RFM aggregates over transactions.parquet
              (the practical limit);
- pandas_rfm: reference, a straightforward pandas version of the RFM stage.
Pipeline measurements validate first inside the child; validation is timed and reported
apart, and the feature seconds exclude it (the spine is also excluded for rfm_stage).
The machine's speed drifts during a long run (here by 2-5x within an hour), so every child
except validate and duckdb_rfm also times the bare DuckDB RFM query just before its own
measurement; the verdicts use these "steadied" ratios, each side in units of the reference
timed beside it. Wall and CPU ratios across children are printed too; --repeat N keeps the
fastest of N runs (and the highest peak).
The script prints a table and the issue's target ratios, and writes DIR/<customers>/results.json.
The world is deleted afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from features.feature import KEYS
from features.frame import build_features
from features.model_input import build_training_frame
from features.population import build_active_spine
from features.rfm import build_rfm_features
from pipeline.config import Config
from pipeline.demo.world import generate_world
from pipeline.tables import load_tables

CUTOFF = dt.date(2025, 10, 1)
STACK_SIZE = 12
MEASUREMENTS = ("validate", "one_cutoff", "stack_12", "rfm_stage", "duckdb_rfm", "pandas_rfm")
PEAK_LIMIT_GB = 4.0  # for every measurement of the pipeline
REFERENCES = ("duckdb_rfm", "pandas_rfm")
# (label, numerator, denominator, comparison, bound) on seconds
RATIO_TARGETS = [
    ("one_cutoff / duckdb_rfm", "one_cutoff", "duckdb_rfm", "<=", 3.0),
    ("stack_12 / one_cutoff", "stack_12", "one_cutoff", "<=", 4.0),
    ("pandas_rfm / rfm_stage", "pandas_rfm", "rfm_stage", ">=", 5.0),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, required=True, help="world size")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the world and results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated world for a rerun")
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, help="run only these measurements")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each measurement this many times and keep the fastest (a busy machine is noisy)")
    parser.add_argument("--engine-memory-gb", type=float, default=3.0,
                        help="DuckDB's memory budget in the pipeline measurements (data.engine_memory_gb)")
    parser.add_argument("--stack-engine-memory-gb", type=float, default=3.0,
                        help="the same for stack_12 (it builds in batches of features.batch_rows)")
    parser.add_argument("--child", choices=("generate", *MEASUREMENTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()
    folder = args.out / str(args.customers)
    world = folder / "world"
    if args.child:
        memory = args.stack_engine_memory_gb if args.child == "stack_12" else args.engine_memory_gb
        print(json.dumps(run_child(args.child, world, folder, args.customers, args.seed, memory)))
        return

    generated = None
    if not world_matches(world, args.customers, args.seed):
        print(f"generating a world of {args.customers:,} customers into {world} ...", flush=True)
        generated = in_child("generate", args)
        print(f"   generated in {generated['seconds']:.1f} s, peak {generated['peak_gb']:.2f} GB", flush=True)
    else:
        print(f"reusing the world of {args.customers:,} customers in {world}", flush=True)
    rows = table_rows(world)
    print("   " + ", ".join(f"{name} {count:,}" for name, count in rows.items()), flush=True)

    results = {}
    for name in args.only or MEASUREMENTS:
        runs = []
        for attempt in range(args.repeat):
            print(f"measuring {name} ({attempt + 1}/{args.repeat}) ...", flush=True)
            runs.append(in_child(name, args))
            print("   " + describe(runs[-1]), flush=True)
        results[name] = fastest(runs)

    versions = sorted({result.get("code", "?") for result in results.values()})
    if len(versions) > 1:
        print(f"WARNING: the code changed during the run ({', '.join(versions)}); rerun for comparable figures")
    summary = {
        "customers": args.customers,
        "code": versions,
        "seed": args.seed,
        "cutoff": CUTOFF.isoformat(),
        "stack_cutoffs": [c.isoformat() for c in monthly_cutoffs(CUTOFF, STACK_SIZE)],
        "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "duckdb": duckdb.__version__,
        "pandas": pd.__version__,
        "table_rows": rows,
        "generate": generated,
        "measurements": results,
        "targets": targets(results),
    }
    report(summary)
    (folder / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nresults written to {folder / 'results.json'}")
    if not args.keep:
        shutil.rmtree(world, ignore_errors=True)
        shutil.rmtree(folder / "quarantine", ignore_errors=True)
        shutil.rmtree(folder / ".tmp", ignore_errors=True)


# --- parent ----------------------------------------------------------------------------


def world_matches(world: Path, customers: int, seed: int) -> bool:
    facts = world / "truth" / "world.json"
    if not (facts.is_file() and (world / "transactions.parquet").is_file()):
        return False
    run = json.loads(facts.read_text())
    return run.get("n_customers") == customers and run.get("seed") == seed and run.get("format") == "parquet"


def table_rows(world: Path) -> dict[str, int]:
    return {path.stem: pq.ParquetFile(path).metadata.num_rows for path in sorted(world.glob("*.parquet"))}


def in_child(name: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--child", name, "--customers", str(args.customers),
               "--out", str(args.out), "--seed", str(args.seed), "--engine-memory-gb", str(args.engine_memory_gb),
               "--stack-engine-memory-gb", str(args.stack_engine_memory_gb)]
    began = time.perf_counter()
    # In the scratch folder: DuckDB spills to ./.tmp when a query outgrows its memory limit.
    cwd = args.out / str(args.customers)
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        print(f"   child {name} failed with exit code {done.returncode}:\n{tail}", flush=True)
        if name == "generate":
            sys.exit(1)
        return {"error": f"exit code {done.returncode}", "stderr_tail": tail,
                "wall_seconds": time.perf_counter() - began}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fastest(runs: list[dict]) -> dict:
    """The fastest successful run, with the highest peak memory of all runs and every run's seconds."""
    done = [run for run in runs if "error" not in run]
    if not done:
        return runs[-1]
    best = dict(min(done, key=lambda run: run["seconds"]))
    best["peak_gb"] = max(run["peak_gb"] for run in done)
    best["all_seconds"] = [run["seconds"] for run in done]
    return best


def describe(result: dict) -> str:
    if "error" in result:
        return f"FAILED ({result['error']})"
    text = f"{result['seconds']:.1f} s ({result['cpu_seconds']:.1f} s CPU), peak {result['peak_gb']:.2f} GB"
    if result.get("step_peak_gb") is not None:
        text += f" ({result['step_peak_gb']:.2f} GB after validation)"
    if result.get("rows") is not None:
        text += f", {result['rows']:,} rows"
    if result.get("validate_seconds") is not None:
        text += f" (validation {result['validate_seconds']:.1f} s not included)"
    if result.get("reference_seconds") is not None:
        text += f"; bare DuckDB RFM beside it {result['reference_seconds']:.1f} s"
    if result.get("stages"):
        text += "\n   stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["stages"].items())
    return text


def targets(results: dict) -> list[dict]:
    """Each target ratio three ways: wall seconds across children, CPU seconds across children,
    and steadied (each side divided by the bare DuckDB reference timed in its own child just
    before it). The verdict goes by the steadied ratio when both sides have a reference."""
    checks = []
    for label, numerator, denominator, kind, bound in RATIO_TARGETS:
        a, b = results.get(numerator, {}), results.get(denominator, {})
        value = a["seconds"] / b["seconds"] if "seconds" in a and "seconds" in b else None
        cpu = a["cpu_seconds"] / b["cpu_seconds"] if "cpu_seconds" in a and "cpu_seconds" in b else None
        a_units, b_units = _relative(a, numerator), _relative(b, denominator)
        steadied = a_units / b_units if a_units and b_units else None
        verdict = steadied if steadied is not None else value
        checks.append({"target": label, "value": value, "kind": kind, "bound": bound, "met": _met(verdict, kind, bound),
                       "cpu_value": cpu, "steadied_value": steadied})
    for name, result in results.items():
        if name in REFERENCES:  # the goal is for the pipeline, not for what it is compared with
            continue
        value = result.get("peak_gb")
        checks.append({"target": f"peak GB {name}", "value": value, "kind": "<=", "bound": PEAK_LIMIT_GB,
                       "met": _met(value, "<=", PEAK_LIMIT_GB)})
    return checks


def _relative(result: dict, name: str) -> float | None:
    """A measurement's seconds in units of the bare DuckDB RFM query timed beside it."""
    if name == "duckdb_rfm":
        return 1.0 if "seconds" in result else None
    if "seconds" in result and result.get("reference_seconds"):
        return result["seconds"] / result["reference_seconds"]
    return None


def _met(value: float | None, kind: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value <= bound if kind == "<=" else value >= bound


def report(summary: dict) -> None:
    print(f"\n== {summary['customers']:,} customers, code {', '.join(summary['code'])}, cutoff {summary['cutoff']}, "
          f"stack {summary['stack_cutoffs'][0]} .. {summary['stack_cutoffs'][-1]} "
          f"(duckdb {summary['duckdb']}, pandas {summary['pandas']})")
    print("   " + ", ".join(f"{name} {count:,}" for name, count in summary["table_rows"].items()))
    if summary["generate"]:
        print(f"   generate: {summary['generate']['seconds']:.1f} s, peak {summary['generate']['peak_gb']:.2f} GB")
    print(f"\n   {'measurement':<12} {'rows':>12} {'validate s':>11} {'seconds':>9} {'CPU s':>8} {'peak GB':>8} "
          f"{'step peak GB':>13}")
    for name, result in summary["measurements"].items():
        if "error" in result:
            print(f"   {name:<12} FAILED: {result['error']}")
            continue
        rows = f"{result['rows']:,}" if result.get("rows") is not None else "-"
        validate = f"{result['validate_seconds']:.1f}" if result.get("validate_seconds") is not None else "-"
        step = f"{result['step_peak_gb']:.2f}" if result.get("step_peak_gb") is not None else "-"
        print(f"   {name:<12} {rows:>12} {validate:>11} {result['seconds']:>9.1f} {result['cpu_seconds']:>8.1f} "
              f"{result['peak_gb']:>8.2f} {step:>13}")
    print("   (peak GB: whole child, validation included; step peak GB: after validation only)")
    print(f"\n   {'target':<28} {'steadied':>8} {'goal':>8}  {'verdict':<7} {'wall':>8} {'CPU':>8}")
    for check in summary["targets"]:
        value = "-" if check["value"] is None else f"{check['value']:.2f}"
        steadied = "-" if check.get("steadied_value") is None else f"{check['steadied_value']:.2f}"
        cpu = "" if check.get("cpu_value") is None else f"{check['cpu_value']:.2f}"
        verdict = {True: "met", False: "MISSED", None: "n/a"}[check["met"]]
        goal = f"{check['kind']} {check['bound']:g}"
        print(f"   {check['target']:<28} {steadied:>8} {goal:>8}  {verdict:<7} {value:>8} {cpu:>8}")
    print("   (steadied: each side in units of the bare DuckDB RFM query timed in its own child just before it)")
    for name, result in summary["measurements"].items():
        if result.get("stages"):
            parts = ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items())
            print(f"   seconds by stage, {name}: {parts}")
    sys.stdout.flush()


# --- children --------------------------------------------------------------------------


def monthly_cutoffs(last: dt.date, count: int) -> list[dt.date]:
    """`count` first-of-month cutoffs ending at `last`, oldest first."""
    months = [last.year * 12 + last.month - 1 - k for k in reversed(range(count))]
    return [dt.date(m // 12, m % 12 + 1, 1) for m in months]


class StageTimes(logging.Handler):
    """Collects the per-stage seconds that build_features logs, and the steps around them
    (active customers, labels) that the training frame logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.args, tuple):
            return
        if record.msg.startswith("stage ") and len(record.args) == 4:  # features.frame
            self.seconds[record.args[0]] = float(record.args[3])
        elif record.msg.startswith("%s done in") and len(record.args) == 3:  # pipeline.logs.stage
            self.seconds[record.args[0]] = float(record.args[1])


class Clock:
    """Wall and CPU seconds (all threads of this process) since it was started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()

    def into(self, result: dict, key: str = "") -> None:
        result[f"{key}seconds"] = time.perf_counter() - self.wall
        result[f"{key}cpu_seconds"] = cpu_seconds() - self.cpu


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def reset_peak() -> bool:
    """Restart the peak-RSS count (Linux: clear_refs 5), so that a step's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def code_version() -> str:
    """The commit, and a hash of the sources under measurement (they may change during a long run
    when others work in the same checkout)."""
    root = Path(__file__).resolve().parents[2]
    sources = sorted((root / "features").glob("*.py"))
    sources += [root / "pipeline" / f"{name}.py" for name in ("tables", "contract", "config", "train")]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources if path.is_file())).hexdigest()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = "unknown"
    return f"{head} (sources {digest[:10]})"


def run_child(name: str, world: Path, folder: Path, customers: int, seed: int, memory_gb: float) -> dict:
    stage_times = StageTimes()
    for name_of_log in ("features.frame", "churn"):  # "churn": pipeline.logs.stage
        timed_log = logging.getLogger(name_of_log)
        timed_log.setLevel(logging.INFO)
        timed_log.addHandler(stage_times)
        timed_log.propagate = False
    result: dict = {"code": code_version()}  # others may commit while a long run goes on
    if name == "generate":
        clock = Clock()
        result["rows"] = generate_world(world, customers, seed, replace=True)
        clock.into(result)
    elif name in ("duckdb_rfm", "pandas_rfm"):
        if name == "pandas_rfm":
            measure_reference(world, result)
        clock = Clock()
        found = duckdb_rfm(world) if name == "duckdb_rfm" else pandas_rfm(world)
        clock.into(result)
        result["rows"] = len(found)
    else:
        cfg = Config()
        clock = Clock()
        tables = load_tables(world, dt.datetime.now(), folder / "quarantine", "parquet", memory_gb)
        result["engine_memory_gb"] = memory_gb
        clock.into(result, "validate_")
        if name != "validate":  # the step's own peak as well as the whole child's
            result["validate_peak_gb"] = peak_gb()
            measure_reference(world, result)  # its memory counts in neither peak
            result["step_peak_gb"] = -1.0 if reset_peak() else None
        if name == "validate":
            result["seconds"], result["cpu_seconds"] = result.pop("validate_seconds"), result.pop("validate_cpu_seconds")
            result["rows"] = sum(tables.row_counts.values()) - sum(tables.quarantined.values())
            result["quarantined"] = tables.quarantined
        elif name == "stack_12":
            clock = Clock()
            frame = build_training_frame(tables, cfg, monthly_cutoffs(CUTOFF, STACK_SIZE))
            clock.into(result)
            result["rows"], result["columns"] = frame.shape
        else:
            clock = Clock()
            spine = build_active_spine(tables, [CUTOFF], cfg.churn)
            clock.into(result, "spine_")
            if name == "one_cutoff":
                frame = build_features(tables, spine, cfg.features)
                clock.into(result)  # the spine is part of the step
            else:  # rfm_stage: the stage alone, on the spine as build_features hands it over
                frame = spine[KEYS].sort_values(KEYS, kind="stable").reset_index(drop=True)
                clock = Clock()
                frame = build_rfm_features(tables, frame, cfg.features)
                clock.into(result)
            result["rows"], result["columns"] = frame.shape
    if stage_times.seconds:
        result["stages"] = stage_times.seconds
    result["peak_gb"] = peak_gb()
    if result.get("step_peak_gb") is not None:  # ru_maxrss was restarted after validation
        result["step_peak_gb"] = result["peak_gb"]
    result["peak_gb"] = max(result["peak_gb"], result.get("validate_peak_gb", 0.0))
    result["load_average"] = os.getloadavg()[0]  # other work on the machine at the end of the measurement
    return result


def measure_reference(world: Path, result: dict) -> None:
    """The bare DuckDB RFM query, timed in this child just before its own measurement: the
    machine's speed drifts over a long run, and a ratio to this reference does not."""
    clock = Clock()
    duckdb_rfm(world)
    clock.into(result, "reference_")


def duckdb_rfm(world: Path) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer, straight from the Parquet file."""
    con = duckdb.connect()
    sql = """
    SELECT customer_id,
        date_diff('day', max(purchased_at) FILTER (WHERE amount > 0), $cutoff) AS recency_days,
        count(*) FILTER (WHERE amount > 0) AS frequency,
        sum(amount) AS monetary,
        count(*) FILTER (WHERE amount > 0 AND purchased_at >= $cutoff - INTERVAL 90 DAY) AS frequency_90d,
        sum(amount) FILTER (WHERE purchased_at >= $cutoff - INTERVAL 90 DAY) AS monetary_90d
    FROM read_parquet($path)
    WHERE purchased_at < $cutoff
    GROUP BY customer_id
    """
    cutoff = dt.datetime.combine(CUTOFF, dt.time())
    return con.execute(sql, {"cutoff": cutoff, "path": str(world / "transactions.parquet")}).df()


def pandas_rfm(world: Path) -> pd.DataFrame:
    """The RFM stage as one would write it in pandas: read, filter, one groupby. It covers
    recency, first purchase, windowed counts and revenue, totals, distinct purchase days,
    average order value, trend, distinct categories, discounts and refunds; not the gaps
    between purchases (mean, spread, overdue ratio)."""
    cfg = Config()
    windows, trend = cfg.features.windows, cfg.features.trend_days
    cutoff = pd.Timestamp(CUTOFF)
    tx = pd.read_parquet(world / "transactions.parquet",
                         columns=["customer_id", "purchased_at", "amount", "category", "discount_amount"])
    tx = tx[(tx["purchased_at"] < cutoff) & (tx["amount"] != 0)]  # zero amounts are quarantined
    age = (cutoff - tx["purchased_at"].dt.floor("D")).dt.days  # calendar days, like date_diff('day')
    is_purchase = tx["amount"] > 0
    active = tx.loc[is_purchase & (age <= cfg.churn.active_lookback_days), "customer_id"].unique()
    keep = tx["customer_id"].isin(active)
    tx, age, is_purchase = tx[keep], age[keep], is_purchase[keep]
    amount = tx["amount"]
    parts = pd.DataFrame({
        "customer_id": tx["customer_id"],
        "purchase_age": age.where(is_purchase),
        "purchase": is_purchase,
        "amount": amount,
        "purchased": amount.where(is_purchase, 0.0),
        "discounted": tx["discount_amount"].where(is_purchase, 0.0),
        "refund": ~is_purchase,
        "refunded": (-amount).where(~is_purchase, 0.0),
        "purchase_category": tx["category"].where(is_purchase),
        "purchase_day": tx["purchased_at"].dt.floor("D").where(is_purchase),
        "recent": is_purchase & (age < trend),
        "earlier": is_purchase & (age >= trend) & (age < 2 * trend),
    })
    for w in windows:
        parts[f"purchases_{w}d"] = is_purchase & (age < w)
        parts[f"revenue_{w}d"] = amount.where(age < w, 0.0)
    sums = ["purchase", "amount", "purchased", "discounted", "refund", "refunded", "recent", "earlier"]
    sums += [f"{kind}_{w}d" for w in windows for kind in ("purchases", "revenue")]
    grouped = parts.groupby("customer_id", sort=True)
    agg = grouped[sums].sum()
    agg["days_since_last_purchase"] = grouped["purchase_age"].min()
    agg["days_since_first_purchase"] = grouped["purchase_age"].max()
    agg["distinct_categories"] = grouped["purchase_category"].nunique()
    agg["purchase_days_total"] = grouped["purchase_day"].nunique()
    agg = agg.rename(columns={"purchase": "purchases_total", "amount": "revenue_total", "refund": "refunds_total"})
    agg["average_order_value"] = agg["purchased"] / agg["purchases_total"].where(agg["purchases_total"] > 0)
    agg["purchase_trend"] = (agg["recent"] + 1.0) / (agg["earlier"] + 1.0)
    total = agg["discounted"] + agg["purchased"]
    agg["discount_revenue_share"] = agg["discounted"] / total.where(total != 0)
    agg["refund_share"] = agg["refunded"] / agg["purchased"].where(agg["purchased"] != 0)
    return agg.drop(columns=["purchased", "discounted", "refunded", "recent", "earlier"]).reset_index()


if __name__ == "__main__":
    main()
