"""Benchmark `churn import shopify` on a large Shopify orders export, against a bare pandas read
of the same file timed beside it.

    python tests/benchmarks/bench_import.py [--orders 1000000] --out DIR [--seed 1] [--keep] [--profile]

The export is DIR/<orders>/orders_export.csv, Shopify's orders CSV as
tests/pipeline/importers/vendor_exports.py writes it (one row per line item, 1-3 per order,
the order's own fields on its first line only, refunds as Refunded Amount, 3% unpaid orders
besides the purchases), made from a demo world (generate_world, CSV, seed --seed) of about
--orders / 50 customers (the demo gives about 49 purchases per customer) and cut to its
first --orders orders. The world's customers.csv (the contract's format, emails included)
is kept beside it as DIR/<orders>/customers.csv, the table the orders are linked to. Both
are made in a child process, and reused while DIR/<orders>/export.json records the same
orders and seed and the files have the sizes it records.

Then, each in a fresh child process (so that its peak memory, ru_maxrss, is its own):
- baseline: pandas.read_csv(export, dtype=str, keep_default_na=False), the bare read;
- linked:   run_import(shopify mapping, [export], DIR/<orders>/linked, customers.csv), as
            `churn import shopify FILE --customers customers.csv`: orders linked by email;
- created:  the same without a customers table: the customers are created from the emails.
They run as baseline, linked, baseline, created, baseline: each import is reported as a ratio
to the mean of the two bare reads around it, both reported (the machine is shared and its
speed drifts). For each child: wall and CPU seconds, rows read, rows/s, its peak RSS in GB
and as a ratio to the export's size; for the imports the orders, the transactions (and
customers) written, and the seconds of their parts (read, type, convert, publish and its
steps) with the peak so far after each (VmHWM).

Prints progress lines and a table; writes DIR/import.json (after every child) and
DIR/import.md. With --profile each import runs once more under cProfile afterwards
(DIR/<orders>/<mode>.prof; the top functions are printed; those seconds are not reported).
The imports' output folders are deleted afterwards unless --keep; the export is kept.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import math
import os
import pstats
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PURCHASES_PER_CUSTOMER = 49.0  # the demo world's, over its three years (5,000 customers, seed 1)
UNPAID_SHARE = 0.03  # vendor_exports.shopify_orders adds this share of unpaid orders
EXPORT_LAYOUT = 1  # bump when the way the export is made changes, to rebuild cached ones
RATIO_GOAL = 10.0  # import seconds / bare read seconds
PEAK_GOAL = 6.0  # the import's peak RSS / the export's size
SEQUENCE = ("baseline", "linked", "baseline", "created", "baseline")
IMPORTS = ("linked", "created")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000, help="orders in the export (1-3 line items each)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the export (DIR/<orders>) and results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the imports' output folders")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, run each import once more under cProfile and print its top functions")
    parser.add_argument("--child", choices=("export", "baseline", *IMPORTS), help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()
    folder = args.out / str(args.orders)
    if args.child:
        result = run_child(args.child, folder, args.orders, args.seed, args.profile_child)
        print(json.dumps(result, default=plain))
        return

    folder.mkdir(parents=True, exist_ok=True)
    export = export_facts(folder, args.orders, args.seed)
    if export is None:
        print(f"building a Shopify orders export of {args.orders:,} orders into {folder} ...", flush=True)
        built = in_child("export", args)
        if "error" in built:
            sys.exit(f"the export could not be built: {built['error']}")
        export = export_facts(folder, args.orders, args.seed)
        print(f"   built in {built['seconds']:.1f} s (peak {built['peak_gb']:.2f} GB)", flush=True)
    else:
        print(f"reusing the export of {args.orders:,} orders in {folder}", flush=True)
    print(f"   {export['csv_rows']:,} CSV rows, {export['orders']:,} orders, {export['bytes'] / 1e6:,.0f} MB; "
          f"{export['customers']:,} customers in customers.csv", flush=True)

    summary = {"code": code_version(), "seed": args.seed, "cpus": os.cpu_count(), "export": export,
               "baseline": "pandas.read_csv(export, dtype=str, keep_default_na=False)",
               "goals": {"ratio": RATIO_GOAL, "peak_per_file": PEAK_GOAL}, "runs": []}
    for number, name in enumerate(SEQUENCE, start=1):
        print(f"[{number}/{len(SEQUENCE)}] {describe_measurement(name)} ...", flush=True)
        result = in_child(name, args)
        result["measurement"] = name
        if "error" not in result:
            result["peak_per_file"] = result["peak_gb"] * 1024**3 / export["bytes"]
            result["rows_per_second"] = result["rows_read"] / result["seconds"]
        summary["runs"].append(result)
        print("   " + describe(result), flush=True)
        summary["imports"] = ratios(summary["runs"])
        write(summary, args.out)
    if args.profile:
        for name in IMPORTS:
            print(f"profiling {name} under cProfile ...", flush=True)
            result = in_child(name, args, profile=True)
            if "error" not in result:
                print(result["profile_top"], flush=True)
    summary["child_code"] = sorted({run.get("code", "?") for run in summary["runs"]})
    if len(summary["child_code"]) > 1:
        print(f"WARNING: the code changed during the run ({', '.join(summary['child_code'])}); rerun for comparable "
              "figures", flush=True)
    report(summary)
    write(summary, args.out)
    print(f"\nresults written to {args.out / 'import.json'} and {args.out / 'import.md'}")
    if not args.keep:
        for name in IMPORTS:
            shutil.rmtree(folder / name, ignore_errors=True)


def describe_measurement(name: str) -> str:
    return {"baseline": "bare read: pandas.read_csv(dtype=str) of the whole export",
            "linked": "import, orders linked to customers.csv by email",
            "created": "import without a customers table (customers created from the emails)"}[name]


# --- the export --------------------------------------------------------------------------


def export_facts(folder: Path, orders: int, seed: int) -> dict | None:
    """The cached export's record, when it was made for these orders and seed and is whole."""
    record = folder / "export.json"
    if not record.is_file():
        return None
    facts = json.loads(record.read_text())
    if (facts.get("orders"), facts.get("seed"), facts.get("layout")) != (orders, seed, EXPORT_LAYOUT):
        return None
    for name in ("orders_export.csv", "customers.csv"):
        path = folder / name
        if not path.is_file() or path.stat().st_size != facts["files"][name]:
            return None
    return facts


def build_export(folder: Path, orders: int, seed: int) -> dict:
    """A demo world just big enough, written as Shopify's export and cut to `orders` orders."""
    from pipeline.demo.world import generate_world
    from tests.pipeline.importers import vendor_exports as exports

    (folder / "export.json").unlink(missing_ok=True)
    customers = math.ceil(orders / (PURCHASES_PER_CUSTOMER * (1 + UNPAID_SHARE)) * 1.04)
    world = folder / "world"
    while True:
        progress(f"generating a demo world of {customers:,} customers (CSV, seed {seed}) ...")
        generate_world(world, customers, seed, fmt="csv", replace=True)
        tables = exports.read_world(world)
        progress(f"writing its {int((tables['transactions']['amount'] > 0).sum()):,} purchases as Shopify orders ...")
        rows = exports.shopify_orders(tables["customers"], tables["transactions"], seed=seed)
        number = rows["Name"].str[1:].astype(int) - 1000  # #1001, #1002, ... in the order of payment
        if number.max() >= orders:
            break
        customers = math.ceil(customers * orders / number.max() * 1.04)
    rows = rows[number <= orders]
    target = folder / "orders_export.csv"
    exports.write_shopify_csv(rows, target.with_suffix(".csv.tmp"))
    os.replace(target.with_suffix(".csv.tmp"), target)
    shutil.copyfile(world / "customers.csv", folder / "customers.csv")
    shutil.rmtree(world)
    lines = rows.groupby("Name", sort=False).size()
    facts = {"orders": orders, "seed": seed, "layout": EXPORT_LAYOUT, "world_customers": customers,
             "csv_rows": len(rows), "bytes": target.stat().st_size, "customers": len(tables["customers"]),
             "line_items": {str(k): int(v) for k, v in lines.value_counts().sort_index().items()},
             "financial_status": {k: int(v) for k, v in rows["Financial Status"].value_counts().items() if k},
             "files": {name: (folder / name).stat().st_size for name in ("orders_export.csv", "customers.csv")}}
    (folder / "export.json").write_text(json.dumps(facts, indent=2) + "\n")
    return facts


# --- parent ----------------------------------------------------------------------------


def in_child(name: str, args: argparse.Namespace, profile: bool = False) -> dict:
    """One child process; its progress lines go straight to this terminal (stderr)."""
    command = [sys.executable, __file__, "--child", name, "--orders", str(args.orders), "--out", str(args.out),
               "--seed", str(args.seed)] + (["--profile-child"] if profile else [])
    began = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=args.out / str(args.orders))
    if done.returncode != 0:
        print(f"   child {name} failed with exit code {done.returncode} (its error is above)", flush=True)
        return {"error": f"exit code {done.returncode}", "wall_seconds": time.perf_counter() - began}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratios(runs: list[dict]) -> dict:
    """Each import in units of the mean of the bare reads just before and just after it."""
    out = {}
    for position, run in enumerate(runs):
        if run["measurement"] not in IMPORTS or "error" in run:
            continue
        before = next((r for r in reversed(runs[:position]) if r["measurement"] == "baseline"), None)
        after = next((r for r in runs[position + 1:] if r["measurement"] == "baseline"), None)
        around = [r for r in (before, after) if r is not None and "error" not in r]
        if not around:
            continue
        mean = sum(r["seconds"] for r in around) / len(around)
        mean_cpu = sum(r["cpu_seconds"] for r in around) / len(around)
        out[run["measurement"]] = {
            "seconds": run["seconds"], "baseline_before": before["seconds"] if before and "error" not in before else None,
            "baseline_after": after["seconds"] if after and "error" not in after else None,
            "baseline_mean": mean, "ratio": run["seconds"] / mean, "cpu_ratio": run["cpu_seconds"] / mean_cpu,
            "peak_gb": run["peak_gb"], "peak_per_file": run["peak_per_file"],
            "baseline_peak_per_file": max(r["peak_per_file"] for r in around),
            "ratio_met": run["seconds"] / mean <= RATIO_GOAL, "peak_met": run["peak_per_file"] <= PEAK_GOAL}
    return out


def describe(result: dict) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    text = (f"{result['seconds']:.1f} s (CPU {result['cpu_seconds']:.1f} s), {result['rows_read']:,} rows read, "
            f"{result['rows_per_second']:,.0f} rows/s, peak {result['peak_gb']:.2f} GB "
            f"({result['peak_per_file']:.1f}x the file)")
    if "written" in result:
        text += (f"; {result['orders']:,} orders, written "
                 + ", ".join(f"{k} {v:,}" for k, v in result["written"].items()))
    if result.get("parts"):
        text += "\n   parts: " + ", ".join(f"{k} {v['seconds']:.1f} s (peak {v['peak_gb']:.1f} GB)"
                                          for k, v in result["parts"].items())
    return text


def report(summary: dict) -> None:
    export = summary["export"]
    print(f"\n== Shopify import, {export['orders']:,} orders, {export['csv_rows']:,} CSV rows, "
          f"{export['bytes'] / 1e6:,.0f} MB; code {summary['code']}; {summary['cpus']} CPUs")
    print(f"   {'import':<8} {'seconds':>8} {'bare read s (before/after)':>27} {'ratio':>6} {'CPU ratio':>9} "
          f"{'rows/s':>10} {'peak GB':>8} {'peak/file':>9}  verdict")
    for name, found in summary.get("imports", {}).items():
        run = next(r for r in summary["runs"] if r["measurement"] == name)
        before, after = (f"{found[k]:.1f}" if found[k] is not None else "-" for k in ("baseline_before", "baseline_after"))
        verdict = ", ".join([f"ratio {'met' if found['ratio_met'] else 'MISSED'} (<= {RATIO_GOAL:g})",
                             f"peak {'met' if found['peak_met'] else 'MISSED'} (<= {PEAK_GOAL:g}x)"])
        print(f"   {name:<8} {found['seconds']:>8.1f} {before + ' / ' + after:>27} {found['ratio']:>6.1f} "
              f"{found['cpu_ratio']:>9.1f} {run['rows_per_second']:>10,.0f} {found['peak_gb']:>8.2f} "
              f"{found['peak_per_file']:>9.1f}  {verdict}")
    reads = [r for r in summary["runs"] if r["measurement"] == "baseline" and "error" not in r]
    if reads:
        shown = ", ".join(f"{r['seconds']:.1f}" for r in reads)
        print(f"   bare reads: {shown} s; peak "
              f"{max(r['peak_gb'] for r in reads):.2f} GB ({max(r['peak_per_file'] for r in reads):.1f}x the file)")
    sys.stdout.flush()


def write(summary: dict, out: Path) -> None:
    (out / "import.json").write_text(json.dumps(summary, indent=2, default=plain) + "\n")
    (out / "import.md").write_text(markdown(summary))


def markdown(summary: dict) -> str:
    export = summary["export"]
    lines = [f"# Import benchmark: `churn import shopify` ({summary['code']}, {summary['cpus']} CPUs)", "",
             f"Export: {export['orders']:,} orders (line items per order: "
             + ", ".join(f"{k}: {v:,}" for k, v in export["line_items"].items())
             + f"), {export['csv_rows']:,} CSV rows, {export['bytes'] / 1e6:,.0f} MB; customers.csv "
             f"{export['customers']:,} customers (seed {summary['seed']}).", "",
             f"Baseline: {summary['baseline']}, timed in its own child before and after each import; the ratio "
             "is the import's seconds over the mean of the two. Peak: the child's ru_maxrss (the interpreter "
             f"included). Goals: ratio <= {RATIO_GOAL:g}, peak <= {PEAK_GOAL:g}x the file.", "",
             "| import | seconds | bare read s (before / after) | ratio (CPU) | rows read | orders | transactions "
             "| customers | rows/s | peak GB | peak / file | goals |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, found in summary.get("imports", {}).items():
        run = next(r for r in summary["runs"] if r["measurement"] == name)
        before, after = (f"{found[k]:.1f}" if found[k] is not None else "-" for k in ("baseline_before", "baseline_after"))
        goals = f"ratio {'met' if found['ratio_met'] else 'MISSED'}, peak {'met' if found['peak_met'] else 'MISSED'}"
        lines.append(f"| {name} | {found['seconds']:.1f} | {before} / {after} | {found['ratio']:.1f}x "
                     f"({found['cpu_ratio']:.1f}x) | {run['rows_read']:,} | {run['orders']:,} "
                     f"| {run['written'].get('transactions', 0):,} | {run['written'].get('customers', 0):,} "
                     f"| {run['rows_per_second']:,.0f} | {found['peak_gb']:.2f} | {found['peak_per_file']:.1f}x "
                     f"| {goals} |")
    reads = [r for r in summary["runs"] if r["measurement"] == "baseline" and "error" not in r]
    if reads:
        shown = ", ".join(f"{r['seconds']:.1f}" for r in reads)
        lines += ["", f"Bare reads: {shown} s, "
                  f"{reads[0]['rows_read']:,} rows; peak {max(r['peak_gb'] for r in reads):.2f} GB "
                  f"({max(r['peak_per_file'] for r in reads):.1f}x the file)."]
    for run in summary["runs"]:
        if run.get("parts"):
            lines += ["", f"Parts of `{run['measurement']}` (seconds, peak so far):", ""]
            lines += [f"- {k}: {v['seconds']:.1f} s, {v['peak_gb']:.2f} GB" for k, v in run["parts"].items()]
    if len(summary.get("child_code", [])) > 1:
        lines += ["", f"WARNING: the code changed during the run ({', '.join(summary['child_code'])})."]
    failed = [r for r in summary["runs"] if "error" in r]
    lines += [""] + [f"- {r['measurement']} FAILED: {r['error']}" for r in failed]
    return "\n".join(lines).rstrip() + "\n"


# --- children --------------------------------------------------------------------------


def run_child(name: str, folder: Path, orders: int, seed: int, profile: bool) -> dict:
    result: dict = {"code": code_version()}
    export, customers = folder / "orders_export.csv", folder / "customers.csv"
    if name == "export":
        clock = Clock()
        result["export"] = build_export(folder, orders, seed)
        clock.into(result)
    elif name == "baseline":
        import pandas as pd

        clock = Clock()
        frame = pd.read_csv(export, dtype=str, keep_default_na=False)
        clock.into(result)
        result["rows_read"], result["columns"] = frame.shape
    else:
        result.update(measure_import(name, export, customers, folder / name, profile))
    result["peak_gb"] = peak_gb()
    result["load_average"] = os.getloadavg()[0]  # other work on the machine at the end
    return result


def measure_import(name: str, export: Path, customers: Path, out_dir: Path, profile: bool) -> dict:
    from pipeline.importers import run_import
    from pipeline.importers.mapping import load_mapping, mapping_path

    parts = Parts()
    mapping = load_mapping(mapping_path("shopify"))
    shutil.rmtree(out_dir, ignore_errors=True)
    result: dict = {}
    profiler = cProfile.Profile() if profile else None
    clock = Clock()
    if profiler:
        profiler.enable()
    found = run_import(mapping, [export], out_dir, customers if name == "linked" else None)
    if profiler:
        profiler.disable()
    clock.into(result)
    result.update(rows_read=found["rows_read"], orders=found["records"], matched=found["matched"],
                  unmatched=found["unmatched"], skipped=found["skipped"], written=found["written"],
                  parts=parts.seconds)
    if profiler:
        profiler.dump_stats(out_dir.parent / f"{name}.prof")
        shown = io.StringIO()
        pstats.Stats(profiler, stream=shown).sort_stats("cumulative").print_stats(30)
        result["profile_top"] = shown.getvalue()
    return result


class Parts:
    """Seconds of the import's parts, by wrapping the functions run_import calls (the names
    they are called by, in their modules), with the peak RSS so far after each."""

    def __init__(self) -> None:
        import pipeline.importers as importers
        from pipeline.importers import kinds, publishing
        from pipeline.importers.kinds import ledger
        from pipeline.importers.kinds import orders as orders_kind

        self.seconds: dict[str, dict] = {}
        for module, attribute, label in [
            (importers, "read_customers", "read customers"), (importers, "read_file", "read"),
            (importers, "type_fields", "type"), (importers, "file_sha256", "hash export"),
            (orders_kind, "one_row_per_order", "convert/one_row_per_order"),
            (ledger, "link_customers", "convert/link"), (orders_kind, "transactions", "convert/transactions"),
            (orders_kind, "shop_customers", "convert/shop_customers"), (importers, "publish", "publish"),
            (publishing, "as_text", "publish/as_text"), (publishing, "assemble", "publish/assemble"),
            (publishing, "check_contract", "publish/check_contract"),
            (publishing, "_put_in_place", "publish/put_in_place"),
        ]:
            setattr(module, attribute, self._timed(getattr(module, attribute), label))
        kinds.KINDS["orders"] = self._timed(kinds.KINDS["orders"], "convert")

    def _timed(self, function, label: str):
        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                entry = self.seconds.setdefault(label, {"seconds": 0.0, "calls": 0})
                entry["seconds"] += time.perf_counter() - began
                entry["calls"] += 1
                entry["peak_gb"] = high_water_gb()

        return timed


class Clock:
    """Wall and CPU seconds (all threads of this process) since it was started."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()

    def into(self, result: dict) -> None:
        result["seconds"] = time.perf_counter() - self.wall
        result["cpu_seconds"] = cpu_seconds() - self.cpu


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def high_water_gb() -> float:
    """VmHWM: the peak resident memory so far (Linux), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return peak_gb()


def progress(text: str) -> None:
    print(f"   | {text}", file=sys.stderr, flush=True)


def code_version() -> str:
    """The commit, and a hash of the sources under measurement (others may change them during the run)."""
    sources = sorted((ROOT / "pipeline" / "importers").rglob("*.py"))
    sources += [ROOT / "pipeline" / f"{name}.py" for name in ("tables", "contract", "files")]
    sources += [ROOT / "configs" / "sources" / "shopify.yaml"]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources if p.is_file())).hexdigest()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pipeline/importers"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "unknown", ""
    return f"{head}{' + uncommitted changes' if dirty else ''} (sources {digest[:10]})"


def plain(value):
    """numpy scalars (and anything else JSON does not know) as plain values."""
    return value.item() if hasattr(value, "item") else str(value)


if __name__ == "__main__":
    main()
