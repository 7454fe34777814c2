"""Benchmark the demo-world generator.

    python tests/benchmarks/bench_generate.py --customers 100000 [--customers 1000000] --out DIR

Each size runs in a fresh child process, so that its peak memory (ru_maxrss) is its own.
For every size the script reports rows per table, seconds and peak memory, and two ratios
measured in the same run:
- against a baseline: a plain numpy + pyarrow write of the same number of rows with the
  same column types (random values, no simulation), also in a child process; the ratio says
  what the simulation costs on top of merely materialising and writing that much data;
- against the first (smallest) size: seconds per customer, to show how the generator scales.
The worlds are written under DIR/<customers> and deleted afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contract import TABLES
from pipeline.demo.world import ARROW_TYPES, generate_world

CHUNK_ROWS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, action="append", required=True,
                        help="world size; repeat for several sizes")
    parser.add_argument("--out", type=Path, required=True, help="scratch folder for the worlds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--keep", action="store_true", help="keep the generated worlds")
    parser.add_argument("--child", choices=("generate", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    results = []
    for n in sorted(args.customers):
        world = args.out / str(n)
        generated = in_child(["--child", "generate", "--customers", str(n), "--out", str(world),
                              "--seed", str(args.seed), "--format", args.format])
        baseline = in_child(["--child", "baseline", "--customers", str(n),
                             "--out", str(args.out / f"{n}-baseline"),
                             "--rows", json.dumps(generated["rows"])])
        if not args.keep:
            shutil.rmtree(world, ignore_errors=True)
        shutil.rmtree(args.out / f"{n}-baseline", ignore_errors=True)
        results.append((n, generated, baseline))
        report(n, generated, baseline, results[0])


def in_child(arguments: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *arguments], check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_child(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    if args.child == "generate":
        rows = generate_world(args.out, args.customers[0], args.seed, fmt=args.format, replace=True)
    else:
        rows = args.rows
        plain_write(args.out, rows, np.random.default_rng(args.seed))
    seconds = time.perf_counter() - began
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak_mb}))


def plain_write(out: Path, rows: dict[str, int], rng: np.random.Generator) -> None:
    """The same row counts and column types, filled with random values, written in chunks."""
    out.mkdir(parents=True, exist_ok=True)
    for name, count in rows.items():
        schema = pa.schema([pa.field(c.name, ARROW_TYPES[c.kind]) for c in TABLES[name].columns])
        with pq.ParquetWriter(out / f"{name}.parquet", schema, compression="zstd") as writer:
            for start in range(0, count, CHUNK_ROWS):
                size = min(CHUNK_ROWS, count - start)
                writer.write_table(pa.table([random_column(f.type, size, rng) for f in schema],
                                            schema=schema))


def random_column(kind: pa.DataType, size: int, rng: np.random.Generator) -> pa.Array:
    if pa.types.is_string(kind):
        return pc.cast(pa.array(rng.integers(0, 10**9, size)), pa.string())
    if pa.types.is_timestamp(kind):
        return pa.array(rng.integers(1_600_000_000_000_000, 1_800_000_000_000_000, size), type=kind)
    if pa.types.is_boolean(kind):
        return pa.array(rng.random(size) < 0.5)
    if pa.types.is_integer(kind):
        return pa.array(rng.integers(0, 10, size))
    return pa.array(np.round(rng.lognormal(3.5, 0.6, size), 2))


def report(n: int, generated: dict, baseline: dict, first: tuple[int, dict, dict]) -> None:
    total = sum(generated["rows"].values())
    print(f"\n== {n:,} customers: {total:,} rows")
    for table, count in generated["rows"].items():
        print(f"   {table:<16} {count:>12,}")
    print(f"   generator      {generated['seconds']:8.1f} s   peak {generated['peak_mb']:7.0f} MB"
          f"   {total / generated['seconds']:,.0f} rows/s")
    print(f"   plain write    {baseline['seconds']:8.1f} s   peak {baseline['peak_mb']:7.0f} MB"
          f"   ratio generator / plain write: {generated['seconds'] / baseline['seconds']:.2f}")
    first_n, first_generated, _ = first
    if first_n != n:
        per_customer = (generated["seconds"] / n) / (first_generated["seconds"] / first_n)
        print(f"   seconds per customer vs {first_n:,} customers: {per_customer:.2f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
