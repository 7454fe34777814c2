"""Time validation of the input tables against the bare DuckDB RFM query, in one process.

    python tests/benchmarks/bench_validation.py --world DIR [--out DIR] [--engine-memory-gb 3]

DIR is a generated world of Parquet files, e.g. 1M customers (about 90 s, 1.5 GB):

    python -c "from pathlib import Path; from pipeline.demo.world import generate_world; \\
        generate_world(Path('/tmp/bench/world'), n_customers=1_000_000, seed=1, fmt='parquet')"

In one fresh process, and in this order, the script times:
- rfm:         the bare DuckDB RFM query over transactions.parquet (bench_features.duckdb_rfm),
               run once to warm the file cache and then timed (the unit of every ratio);
- validate:    load_tables on the world (pipeline/tables.py, every contract rule, the quarantine);
- features_at: every feature stage for the latest complete cutoff (features/model_input.py),
               the one-cutoff work of the nightly job that reads the validated tables (with
               the seconds of each stage);
- rfm_after:   the bare query again, to show how the machine's speed drifted meanwhile.
It prints each in seconds, CPU seconds and units of the bare query, the peak RSS of the process
(ru_maxrss) after validation and at the end, and the verdict on the issue's goal (validation at
most 5x the bare query, peak at most 4 GB); with --json FILE it also writes them there. The
machine is shared: run it several times, alternating the code compared, and report ranges.
The code measured is that of the checkout this file is in (not an installed copy), so the
same file copied into another checkout measures that one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's code, before any installed (editable) copy

import duckdb  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_features import code_version, cpu_seconds, duckdb_rfm, peak_gb  # noqa: E402

from features.model_input import features_at  # noqa: E402
from features.population import latest_complete_cutoff  # noqa: E402
from pipeline.config import Config  # noqa: E402
from pipeline.tables import load_tables  # noqa: E402

GOAL_RATIO, GOAL_PEAK_GB = 5.0, 4.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=Path, required=True, help="folder of a generated Parquet world")
    parser.add_argument("--out", type=Path, help="scratch folder for the engine and the quarantine (default: a temporary one)")
    parser.add_argument("--engine-memory-gb", type=float, default=3.0, help="data.engine_memory_gb")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as scratch:
        out = args.out or Path(scratch)
        result = measure(args.world.resolve(), out, args.engine_memory_gb)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def measure(world: Path, out: Path, memory_gb: float) -> dict:
    result: dict = {"code": code_version(), "world": str(world), "duckdb": duckdb.__version__,
                    "engine_memory_gb": memory_gb}
    duckdb_rfm(world)  # warm the file cache: the reference should not pay for the disk
    result["rfm"] = timed(lambda: duckdb_rfm(world))[1]
    tables, result["validate"] = timed(lambda: load_tables(world, dt.datetime.now(), out / "quarantine", "parquet",
                                                           memory_gb, work_dir=out / "engine"))
    result["validate_peak_gb"] = peak_gb()
    result["rows"] = dict(tables.row_counts)
    result["quarantined"] = dict(tables.quarantined)
    cfg = Config()
    cutoff = latest_complete_cutoff(tables.last_event_at().date(), cfg.churn.horizon_days)
    stages = StageSeconds()
    logging.getLogger("features.frame").addHandler(stages)
    logging.getLogger("features.frame").setLevel(logging.INFO)
    frame, result["features_at"] = timed(lambda: features_at(tables, cfg, cutoff))
    result["stages"] = stages.seconds
    result["cutoff"], result["feature_rows"] = cutoff.isoformat(), len(frame)
    del frame
    tables.close()
    result["rfm_after"] = timed(lambda: duckdb_rfm(world))[1]
    result["peak_gb"] = peak_gb()
    unit = result["rfm"]["seconds"]
    for step in ("validate", "features_at", "rfm_after"):
        result[step]["x_rfm"] = result[step]["seconds"] / unit
    result["goal_met"] = result["validate"]["x_rfm"] <= GOAL_RATIO and result["peak_gb"] <= GOAL_PEAK_GB
    return result


class StageSeconds(logging.Handler):
    """The seconds of each feature stage, as features/frame.py logs them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("stage ") and isinstance(record.args, tuple) and len(record.args) == 4:
            self.seconds[record.args[0]] = float(record.args[3])


def timed(step):
    """(what step() returns, its wall and CPU seconds)."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    value = step()
    return value, {"seconds": time.perf_counter() - wall, "cpu_seconds": cpu_seconds() - cpu}


def report(result: dict) -> None:
    print(f"code {result['code']} in {ROOT}, duckdb {result['duckdb']}, world {result['world']}")
    print("   rows " + ", ".join(f"{name} {count:,}" for name, count in result["rows"].items())
          + f"; quarantined {sum(result['quarantined'].values()):,}")
    print(f"   {'step':<12} {'seconds':>8} {'CPU s':>8} {'x RFM':>7}")
    for step in ("rfm", "validate", "features_at", "rfm_after"):
        values = result[step]
        ratio = f"{values.get('x_rfm', 1.0):.2f}"
        print(f"   {step:<12} {values['seconds']:>8.2f} {values['cpu_seconds']:>8.2f} {ratio:>7}")
    print(f"   features_at: cutoff {result['cutoff']}, {result['feature_rows']:,} customers; stages: "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result["stages"].items()))
    print(f"   peak RSS {result['validate_peak_gb']:.2f} GB after validation, {result['peak_gb']:.2f} GB at the end")
    verdict = "met" if result["goal_met"] else "MISSED"
    print(f"   goal: validation <= {GOAL_RATIO:g}x the bare query, peak <= {GOAL_PEAK_GB:g} GB: {verdict}")


if __name__ == "__main__":
    main()
