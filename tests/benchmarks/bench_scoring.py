"""Benchmark the nightly scoring job on a large demo world.

    python tests/benchmarks/bench_scoring.py --customers 1000000 --out DIR [--keep]

Champion models are trained once on a small world of the same generator (DIR/train_<n>), so
that the measurement is the nightly job alone. The large world is generated into
DIR/<customers>/world unless bench_features.py left one there. Each measurement runs in a
fresh child process (its peak memory is its own):
- score:      load_tables (timed apart) then run_scoring as of the end of the data:
              features, both models, reasons, the list, its manifest and summary.html;
- duckdb_rfm: reference, the bare DuckDB RFM query over the same transactions file;
- reasons:    on a sample of the scored customers, exact SHAP (`pred_contrib`) against the
              path attributions the list uses: seconds per row of each and how often they
              name the same strongest reason.
Prints a table with the issue's targets and writes DIR/<customers>/scoring_results.json.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import Clock, code_version, duckdb_rfm, peak_gb, world_matches  # noqa: E402

from pipeline.config import Config  # noqa: E402

SECONDS_LIMIT, PEAK_LIMIT_GB = 120.0, 6.0
SAMPLE_ROWS = 2_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated worlds for a rerun")
    parser.add_argument("--child", choices=("score", "duckdb_rfm", "reasons"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()
    folder = args.out / str(args.customers)
    if args.child:
        print(json.dumps(run_child(args.child, config(args), folder / "world")))
        return

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    prepare_worlds(args, folder)
    results = {}
    for name in ("score", "duckdb_rfm", "reasons"):
        print(f"measuring {name} ...", flush=True)
        results[name] = in_child(name, args, folder)
        print("   " + json.dumps(results[name]), flush=True)
    summary = {"customers": args.customers, "train_customers": args.train_customers, "code": code_version(),
               "cpus": os.cpu_count(), "measurements": results}
    report(summary)
    (folder / "scoring_results.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.keep:
        shutil.rmtree(folder / "world", ignore_errors=True)
        shutil.rmtree(args.out / f"train_{args.train_customers}", ignore_errors=True)


def config(args: argparse.Namespace) -> Config:
    """Scoring reads the large world; the models live in the small world's store."""
    train = args.out / f"train_{args.train_customers}"
    scratch = args.out / str(args.customers)
    return Config.model_validate({
        "data": {"path": str(scratch / "world"), "format": "parquet", "quarantine_dir": str(scratch / "quarantine")},
        "tracking": {"uri": f"sqlite:///{train / 'mlflow.db'}", "artifact_dir": str(train / "mlartifacts")},
        "scoring": {"output_dir": str(scratch / "at_risk")},
    })


def prepare_worlds(args: argparse.Namespace, folder: Path) -> None:
    from pipeline.demo.world import generate_world
    from pipeline.tables import load_tables
    from pipeline.train import run_training

    world = folder / "world"
    if not world_matches(world, args.customers, args.seed):
        print(f"generating a world of {args.customers:,} customers into {world} ...", flush=True)
        generate_world(world, args.customers, args.seed, replace=True)
    train = args.out / f"train_{args.train_customers}"
    if not (train / "mlflow.db").is_file():
        print(f"training champions on a world of {args.train_customers:,} customers ...", flush=True)
        generate_world(train / "world", args.train_customers, args.seed + 1, replace=True)
        cfg = config(args).model_copy(update={"data": Config().data.model_copy(update={
            "path": train / "world", "quarantine_dir": train / "quarantine"})})
        tables = load_tables(train / "world", dt.datetime.now(), None, "parquet")
        run_training(tables, cfg, "force", "(bench_scoring.py)")
        tables.close()


def in_child(name: str, args: argparse.Namespace, folder: Path) -> dict:
    command = [sys.executable, __file__, "--child", name, "--customers", str(args.customers), "--out", str(args.out),
               "--train-customers", str(args.train_customers), "--seed", str(args.seed)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=folder)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        print(f"   child {name} failed:\n{tail}", flush=True)
        return {"error": f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


class StageTimes(logging.Handler):
    """The seconds of each `stage(...)` block the pipeline logs ('<what> done in 1.2s ...')."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if " done in " in text:
            what, rest = text.split(" done in ", 1)
            self.seconds[what] = float(rest.split("s", 1)[0])


def run_child(name: str, cfg: Config, world: Path) -> dict:
    result: dict = {}
    if name == "duckdb_rfm":
        clock = Clock()
        result["rows"] = len(duckdb_rfm(world))
        clock.into(result)
    else:
        from pipeline.score import run_scoring
        from pipeline.tables import load_tables

        times = StageTimes()
        logging.getLogger().addHandler(times)
        logging.getLogger().setLevel(logging.INFO)
        clock = Clock()
        tables = load_tables(world, dt.datetime.now(), cfg.data.quarantine_dir, "parquet")
        clock.into(result, "validate_")
        as_of = tables.last_event_at().date() + dt.timedelta(days=1)
        if name == "score":
            clock = Clock()
            manifest = run_scoring(tables, cfg, as_of)
            clock.into(result)
            result["rows"] = manifest["customers_scored"]
            result["per_tier"] = manifest["customers_per_tier"]
            result["stages"] = times.seconds
        else:
            result |= compare_reasons(tables, cfg, as_of)
    result["peak_gb"] = peak_gb()
    return result


def compare_reasons(tables, cfg: Config, as_of: dt.date) -> dict:
    """Exact SHAP vs path attributions on a sample of the customers scored at `as_of`."""
    from features.catalog import feature_catalog
    from features.frame import build_features
    from features.population import build_active_spine
    from models.reasons import top_reason_agreement
    from pipeline import tracking

    client = tracking.start_tracking(cfg.tracking)
    model = tracking.load_champion(client, cfg.tracking.churn_model_name).fitted
    spine = build_active_spine(tables, [as_of], cfg.churn)
    sample = build_features(tables, spine.sample(min(len(spine), SAMPLE_ROWS), random_state=0), cfg.features)
    model.contributions(sample.head(10))  # the leaf credits are built once per model: not per row
    began = time.perf_counter()
    fast = model.contributions(sample)
    fast_seconds = time.perf_counter() - began
    began = time.perf_counter()
    exact = model.shap_values(sample)
    exact_seconds = time.perf_counter() - began
    return {"rows": len(sample), "path_ms_per_row": 1000 * fast_seconds / len(sample),
            "shap_ms_per_row": 1000 * exact_seconds / len(sample),
            "agreement": top_reason_agreement(fast, exact, feature_catalog(cfg.features))}


def report(summary: dict) -> None:
    m = summary["measurements"]
    score, rfm, reasons = m.get("score", {}), m.get("duckdb_rfm", {}), m.get("reasons", {})
    print(f"\n== scoring {summary['customers']:,} customers (models trained on {summary['train_customers']:,}), "
          f"code {summary['code']}")
    if "seconds" in score:
        total = score["seconds"] + score["validate_seconds"]
        print(f"   validation {score['validate_seconds']:.1f} s; scoring {score['seconds']:.1f} s "
              f"({score['cpu_seconds']:.1f} s CPU) for {score['rows']:,} customers; peak {score['peak_gb']:.2f} GB")
        print("   stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in score.get("stages", {}).items()))
        print(f"   scoring (after validation) <= {SECONDS_LIMIT:g} s: {'met' if score['seconds'] <= SECONDS_LIMIT else 'MISSED'};"
              f" with validation {total:.1f} s: {'met' if total <= SECONDS_LIMIT else 'MISSED'}")
        print(f"   peak <= {PEAK_LIMIT_GB:g} GB: {'met' if score['peak_gb'] <= PEAK_LIMIT_GB else 'MISSED'}")
        if "seconds" in rfm:
            print(f"   scoring / bare DuckDB RFM query ({rfm['seconds']:.1f} s): {score['seconds'] / rfm['seconds']:.1f}x")
    if "agreement" in reasons:
        print(f"   reasons on {reasons['rows']:,} customers: path attribution {reasons['path_ms_per_row']:.3f} ms/row, "
              f"exact SHAP {reasons['shap_ms_per_row']:.3f} ms/row "
              f"({reasons['shap_ms_per_row'] / reasons['path_ms_per_row']:.0f}x slower); same strongest reason "
              f"for {reasons['agreement']:.1%}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
