"""Benchmark training on large demo worlds: the training frame, the walk-forward backtest of
every candidate with the refit of the winner, against a plain LightGBM fit timed beside them.

    python tests/benchmarks/bench_training.py --customers 100000 [--customers 1000000 ...] --out DIR [--keep]

The world of N customers is DIR/<N>/world, where bench_features.py and bench_scoring.py keep
theirs (`make bench` passes $(BENCH_DIR)/features); it is generated there the same way
(generate_world, seed --seed, in a child process) when it is missing or of another size or seed.
Each size then trains in one fresh child process that mirrors pipeline/train.py `run_training`
without MLflow: the default config (pipeline/config.py; data.path at the world, the project's
tuned-parameter file, scoring.reasons_per_customer unchanged), `training_plans`, then
- frame:    build_training_frame for every cutoff of both plans (active spine, every feature
            stage, both labels); then `rows_at` slices the production rows ("slices", timed apart);
- churn:    `fold_rows` for churn, then evaluate_churn: BG/NBD, logistic (2 strengths), LightGBM
            (its complexity grid) and the blend on every origin, the winner refit on the
            production rows, SHAP and reasons (the folds are let go after, as in run_training);
- clv:      the same for CLV;
- baseline: the in-run reference, one plain LightGBM fit (fit_booster: churn, the 'medium' grid
            point, exactly 200 trees, no evaluation set) on the churn production rows, timed
            just before churn and again just after clv. churn is reported in units of the first,
            clv of the second: the machine's speed drifts (2-5x within an hour on shared machines).
Validation (load_tables) is timed apart, in no phase; the demo world's oracle is read inside churn. After each
phase: wall and CPU seconds, the process's resident memory, its peak so far (ru_maxrss; kept
as a running maximum) and the phase's own peak (VmHWM, restarted before the phase). Inside
churn and clv the seconds of their parts (lifetime fits, backtest, each kind of fit, refit,
reasons, figures) are collected by wrapping those functions in the child, keyed by the part
that called them ("backtest/fit_booster").

Memory: the parent watches the child's resident memory and stops it when it passes
--max-rss-gb or the machine's available memory falls below --min-free-gb; that size is then
reported as not fitting, with the phase it reached. Before a larger size, the smaller size's
peak is extrapolated by customers as a guide.

Prints progress lines and a table; writes DIR/training.json (after every size) and
DIR/training.md. Worlds this script generated are deleted afterwards unless --keep is given.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import Clock, cpu_seconds, reset_peak, table_rows, world_matches  # noqa: E402

from pipeline.config import Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BASELINE_TREES = 200
PHASE_MARK = "phase "
PARTIAL = "training_partial.json"  # in DIR/<N>: the child's result after its latest phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, action="append", required=True,
                        help="world size; repeat for several sizes")
    parser.add_argument("--out", type=Path, required=True, help="folder of the worlds (DIR/<N>/world) and results")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the worlds this script generated")
    parser.add_argument("--max-rss-gb", type=float, default=20.0,
                        help="stop a size whose child holds more resident memory than this")
    parser.add_argument("--min-free-gb", type=float, default=1.0,
                        help="stop a size when the machine's available memory falls below this")
    parser.add_argument("--child", choices=("generate", "train"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = args.out.resolve()
    if args.child:
        folder = args.out / str(args.customers[0])
        print(json.dumps(run_child(args.child, folder / "world", folder, args.customers[0], args.seed), default=plain))
        return

    summary = {"code": code_version(), "seed": args.seed, "cpus": os.cpu_count(), "max_rss_gb": args.max_rss_gb,
               "baseline": f"fit_booster churn 'medium', {BASELINE_TREES} trees, no eval set, churn production rows",
               "sizes": []}
    for customers in sorted(set(args.customers)):
        folder = args.out / str(customers)
        world = folder / "world"
        entry: dict = {"customers": customers, "generate": None}
        if not world_matches(world, customers, args.seed):
            print(f"generating a world of {customers:,} customers into {world} ...", flush=True)
            entry["generate"] = in_child("generate", customers, args)
            if "error" in entry["generate"]:
                summary["sizes"].append(entry)
                write(summary, args.out)
                continue
            print(f"   generated in {entry['generate']['seconds']:.1f} s, "
                  f"peak {entry['generate']['peak_gb']:.2f} GB", flush=True)
        else:
            print(f"reusing the world of {customers:,} customers in {world}", flush=True)
        entry["table_rows"] = table_rows(world)
        print("   " + ", ".join(f"{name} {count:,}" for name, count in entry["table_rows"].items()), flush=True)
        done = [s for s in summary["sizes"] if "training" in s and "error" not in s["training"]]
        if done:
            last = done[-1]
            guess = last["training"]["peak_gb"] * customers / last["customers"]
            print(f"   guide: {last['customers']:,} customers peaked at {last['training']['peak_gb']:.2f} GB; "
                  f"by customers this size would peak near {guess:.1f} GB (limit {args.max_rss_gb:g} GB)", flush=True)
        print(f"training on {customers:,} customers (one child process) ...", flush=True)
        entry["training"] = in_child("train", customers, args)
        summary["sizes"].append(entry)
        write(summary, args.out)
        if entry["generate"] is not None and not args.keep:
            for name in ("world", "quarantine", ".tmp"):
                shutil.rmtree(folder / name, ignore_errors=True)
    summary["growth"] = growth(summary["sizes"])
    report(summary)
    write(summary, args.out)
    print(f"\nresults written to {args.out / 'training.json'} and {args.out / 'training.md'}")


def config(world: Path, folder: Path) -> Config:
    """The default config, reading the world; the tuned parameters where `churn train` looks."""
    cfg = Config.model_validate({"data": {"path": str(world), "format": "parquet",
                                          "quarantine_dir": str(folder / "quarantine")}})
    return cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"tuned_params_path": ROOT / cfg.model.tuned_params_path})})


def code_version() -> str:
    """The commit, and a hash of the sources under measurement (others may change them during a long run)."""
    sources = sorted(p for package in ("features", "models", "pipeline") for p in (ROOT / package).rglob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources if p.is_file())).hexdigest()
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "features", "models", "pipeline"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head, dirty = "unknown", ""
    return f"{head}{' + uncommitted changes' if dirty else ''} (sources {digest[:10]})"


# --- parent ----------------------------------------------------------------------------


def in_child(name: str, customers: int, args: argparse.Namespace) -> dict:
    """Run one child, echo its progress lines, and stop it when memory runs out."""
    command = [sys.executable, __file__, "--child", name, "--customers", str(customers), "--out", str(args.out),
               "--seed", str(args.seed)]
    cwd = args.out / str(customers)  # DuckDB spills to ./.tmp when a query outgrows its memory limit
    cwd.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    tail: collections.deque[str] = collections.deque(maxlen=20)
    state = {"phase": "start", "stdout": ""}

    def echo() -> None:
        for line in child.stderr:
            line = line.rstrip("\n")
            tail.append(line)
            if line.startswith(PHASE_MARK):
                state["phase"] = line[len(PHASE_MARK):].split()[0]
            print(f"   | {line}", flush=True)

    def collect() -> None:
        state["stdout"] = child.stdout.read()

    threads = [threading.Thread(target=echo, daemon=True), threading.Thread(target=collect, daemon=True)]
    for thread in threads:
        thread.start()
    stopped, highest = None, 0.0
    try:
        while child.poll() is None:
            rss, available = resident_gb(child.pid), available_gb()
            highest = max(highest, rss)
            if rss > args.max_rss_gb:
                stopped = f"resident memory {rss:.1f} GB passed --max-rss-gb {args.max_rss_gb:g}"
            elif available is not None and available < args.min_free_gb:
                stopped = f"the machine's available memory fell to {available:.1f} GB (child at {rss:.1f} GB)"
            if stopped:
                child.kill()
                break
            time.sleep(0.5)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for thread in threads:
            thread.join(timeout=10)
    seconds = time.perf_counter() - began
    partial = None
    if name == "train" and (cwd / PARTIAL).is_file() and (cwd / PARTIAL).stat().st_mtime >= time.time() - seconds:
        partial = json.loads((cwd / PARTIAL).read_text())
    if stopped:
        print(f"   DID NOT FIT: stopped in phase {state['phase']} after {seconds:.0f} s: {stopped}", flush=True)
        return {"error": "did not fit", "why": stopped, "phase": state["phase"], "highest_rss_gb": highest,
                "wall_seconds": seconds, "partial": partial}
    if child.returncode != 0:
        print(f"   child {name} failed with exit code {child.returncode} in phase {state['phase']}", flush=True)
        return {"error": f"exit code {child.returncode}", "phase": state["phase"], "stderr_tail": list(tail),
                "highest_rss_gb": highest, "wall_seconds": seconds, "partial": partial}
    return json.loads(state["stdout"].strip().splitlines()[-1])


def resident_gb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def available_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def growth(sizes: list[dict]) -> list[dict]:
    """Each measured size against the smallest: rows, seconds and the ratios to the baseline."""
    measured = [s for s in sizes if "error" not in s.get("training", {"error": 1})]
    if len(measured) < 2:
        return []
    first = measured[0]
    out = []
    for size in measured[1:]:
        a, b = first["training"], size["training"]
        row = {"from": first["customers"], "to": size["customers"], "customers": size["customers"] / first["customers"],
               "frame_rows": b["frame_rows"] / a["frame_rows"], "peak_gb": b["peak_gb"] / a["peak_gb"]}
        for phase in ("frame", "churn", "clv", "baseline_before", "baseline_after"):
            row[f"{phase}_seconds"] = b["phases"][phase]["seconds"] / a["phases"][phase]["seconds"]
        for ratio in ("churn_per_baseline", "clv_per_baseline", "churn_per_baseline_cpu", "clv_per_baseline_cpu"):
            if ratio in a and ratio in b:
                row[ratio] = b[ratio] / a[ratio]
        out.append(row)
    return out


def plain(value):
    """numpy scalars (and anything else JSON does not know) as plain values."""
    return value.item() if hasattr(value, "item") else str(value)


def write(summary: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "training.json").write_text(json.dumps(summary, indent=2, default=plain) + "\n")
    (out / "training.md").write_text(markdown(summary))


def markdown(summary: dict) -> str:
    lines = [f"# Training benchmark ({summary['code']}, {summary['cpus']} CPUs)", "",
             f"Baseline: {summary['baseline']}; churn / fit uses the fit timed just before it, clv / fit the one "
             "just after it. Peak: the process's ru_maxrss after the phase (running maximum); validation is "
             "timed apart.", "",
             "| customers | cutoffs | frame rows | frame s | churn s | clv s | LightGBM fit s (before / after) "
             "| churn / fit (CPU) | clv / fit (CPU) | peak GB after frame / churn / clv |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in summary["sizes"]:
        t = size.get("training", {})
        if "error" in t or not t:
            why = t.get("why", t.get("error", "not measured")) if t else "world not generated"
            done = (t.get("partial") or {}).get("phases", {})
            shown = "; ".join(f"{k} {v['seconds']:.1f} s, peak {v['peak_gb']:.1f} GB" for k, v in done.items())
            lines.append(f"| {size['customers']:,} | | | | | | | | | DID NOT RUN TO THE END: {why} "
                         f"(phase {t.get('phase', '-')}){'; done: ' + shown if shown else ''} |")
            continue
        p = t["phases"]
        lines.append(f"| {size['customers']:,} | {t['n_cutoffs']} | {t['frame_rows']:,} | {p['frame']['seconds']:.1f} "
                     f"| {p['churn']['seconds']:.1f} | {p['clv']['seconds']:.1f} "
                     f"| {p['baseline_before']['seconds']:.1f} / {p['baseline_after']['seconds']:.1f} "
                     f"| {t['churn_per_baseline']:.1f}x ({t.get('churn_per_baseline_cpu', float('nan')):.1f}x) "
                     f"| {t['clv_per_baseline']:.1f}x ({t.get('clv_per_baseline_cpu', float('nan')):.1f}x) "
                     f"| {p['frame']['peak_gb']:.1f} / {p['churn']['peak_gb']:.1f} / {p['clv']['peak_gb']:.1f} |")
    lines.append("")
    for size in summary["sizes"]:
        t = size.get("training", {})
        if "phases" in t:
            lines.append(f"- {size['customers']:,}: " + describe_choice(t))
    for g in summary.get("growth", []):
        lines.append(f"- {g['from']:,} -> {g['to']:,} customers ({g['customers']:.0f}x): frame rows "
                     f"{g['frame_rows']:.1f}x, seconds frame {g['frame_seconds']:.1f}x, churn {g['churn_seconds']:.1f}x, "
                     f"clv {g['clv_seconds']:.1f}x, baseline fit {g['baseline_before_seconds']:.1f}x; ratio to the fit "
                     f"churn {g['churn_per_baseline']:.2f}x, clv {g['clv_per_baseline']:.2f}x; peak {g['peak_gb']:.1f}x")
    lines.append("")
    lines.append("CPU: the same ratios in CPU seconds of this process (steadier than wall seconds when other work "
                 "shares the cores: the phases are mostly one thread).")
    return "\n".join(lines) + "\n"


def describe_choice(t: dict) -> str:
    c, v = t["churn"], t["clv"]
    cm, vm = c["metrics"], v["metrics"]
    oracle = f", {cm['auc_share_of_oracle']:.1%} of the oracle" if "auc_share_of_oracle" in cm else ""
    return (f"churn ships {c['chosen']} (backtest ROC AUC {cm['roc_auc']:.4f} +- {cm['roc_auc_std']:.4f}{oracle}; "
            + ", ".join(f"{n} {r['setting']} {r['mean_primary']:.4f}" for n, r in c["candidates"].items())
            + f"); clv ships {v['chosen']} (Spearman {vm['spearman']:.4f}; "
            + ", ".join(f"{n} {r['setting']} {r['mean_primary']:.4f}" for n, r in v["candidates"].items()) + ")")


def report(summary: dict) -> None:
    print(f"\n== training benchmark, code {summary['code']}, {summary['cpus']} CPUs")
    for size in summary["sizes"]:
        t = size.get("training", {})
        print(f"\n   {size['customers']:,} customers")
        if "phases" not in t:
            print(f"   NOT MEASURED TO THE END: {t.get('why', t.get('error', 'the world was not generated'))} "
                  f"(phase {t.get('phase', '-')})")
            for name, phase in (t.get("partial") or {}).get("phases", {}).items():
                print(f"   done before: {name} {phase['seconds']:.1f} s ({phase['cpu_seconds']:.1f} s CPU), "
                      f"peak {phase['peak_gb']:.2f} GB")
            continue
        print(f"   {t['n_cutoffs']} cutoffs ({t['cutoffs'][0]} .. {t['cutoffs'][-1]}), frame {t['frame_rows']:,} rows x "
              f"{t['frame_columns']} columns ({t['frame_gb']:.2f} GB)")
        print(f"   {'phase':<16} {'seconds':>9} {'CPU s':>8} {'RSS GB':>7} {'peak GB':>8} {'phase peak':>10}")
        for name, phase in t["phases"].items():
            own = "-" if phase.get("phase_peak_gb") is None else f"{phase['phase_peak_gb']:.2f}"
            print(f"   {name:<16} {phase['seconds']:>9.1f} {phase['cpu_seconds']:>8.1f} {phase['rss_gb']:>7.2f} "
                  f"{phase['peak_gb']:>8.2f} {own:>10}")
        print(f"   churn / baseline fit {t['churn_per_baseline']:.2f}x (CPU {t.get('churn_per_baseline_cpu', 0):.2f}x), "
              f"clv / baseline fit {t['clv_per_baseline']:.2f}x (CPU {t.get('clv_per_baseline_cpu', 0):.2f}x)")
        for name in ("churn", "clv"):
            parts = t["phases"][name].get("parts", {})
            print(f"   {name} parts (wall s / CPU s, calls): "
                  + ", ".join(f"{k} {v['seconds']:.1f} / {v.get('cpu_seconds', 0):.1f} ({v['calls']})"
                              for k, v in parts.items()))
        print("   " + describe_choice(t))
    for line in markdown(summary).splitlines():
        if line.startswith("- ") and " -> " in line:
            print("   " + line[2:])
    sys.stdout.flush()


# --- child -----------------------------------------------------------------------------


def gb(kib: float) -> float:
    return kib / 1024**2


def status_gb(field: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return gb(int(line.split()[1]))
    return None


class Meter:
    """Times phases and reads memory after each; prints one progress line per phase."""

    def __init__(self, parts: PartTimes, partial: Path) -> None:
        self.phases: dict[str, dict] = {}
        self.parts = parts
        self.peak = 0.0
        self.partial = partial  # the result so far, after every phase: what a stopped child leaves
        self.result: dict = {"phases": self.phases}
        partial.unlink(missing_ok=True)

    @contextmanager
    def __call__(self, name: str):
        self.peak = max(self.peak, gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        restarted = reset_peak()  # VmHWM from here on is this phase's own peak
        print(f"{PHASE_MARK}{name} ...", file=sys.stderr, flush=True)
        self.parts.take()
        info: dict = {}
        clock = Clock()
        yield info
        clock.into(info)
        own = status_gb("VmHWM") if restarted else None
        self.peak = max(self.peak, gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss), own or 0.0)
        info |= {"rss_gb": status_gb("VmRSS"), "peak_gb": self.peak, "phase_peak_gb": own}
        parts = self.parts.take()
        if parts:
            info["parts"] = parts
        self.phases[name] = info
        print(f"{PHASE_MARK}{name} done: {info['seconds']:.1f} s ({info['cpu_seconds']:.1f} s CPU), RSS "
              f"{info['rss_gb']:.2f} GB, peak {self.peak:.2f} GB" + (f" (this phase {own:.2f} GB)" if own else ""),
              file=sys.stderr, flush=True)
        self.partial.write_text(json.dumps(self.result | {"peak_gb": self.peak}, default=plain) + "\n")


class PartTimes:
    """Seconds and calls of the parts of evaluate_churn / evaluate_clv, keyed by their callers."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.seconds: dict[str, dict] = {}

    def install(self) -> None:
        from models import evaluation, plots
        from models.churn import ChurnModel
        from models.forward import backtest, candidates

        for owner, names in ((evaluation, ("enrich_folds", "backtest", "refit", "fit_lifetime_model",
                                           "reason_contradictions", "drift_reference", "top_reason_agreement",
                                           "practice_formula_clv")),
                             (candidates, ("fit_booster", "fit_logistic", "fit_logistic_path", "fit_lifetime")),
                             (backtest, ("cross_fitted", "_blend")),
                             (ChurnModel, ("shap_values", "contributions"))):
            for name in names:
                if hasattr(owner, name):  # the code under measurement changes: wrap what is there
                    setattr(owner, name, self.wrap(name, getattr(owner, name)))
        for name in dir(plots):
            if name.endswith("_figure"):
                setattr(plots, name, self.wrap("figures", getattr(plots, name)))

    def wrap(self, label: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            if self.stack and self.stack[-1] == label:  # a figure drawn by a figure: counted once
                return function(*args, **kwargs)
            key = "/".join([*self.stack, label])
            self.stack.append(label)
            began, cpu = time.perf_counter(), cpu_seconds()
            try:
                return function(*args, **kwargs)
            finally:
                self.stack.pop()
                entry = self.seconds.setdefault(key, {"seconds": 0.0, "cpu_seconds": 0.0, "calls": 0})
                took = time.perf_counter() - began
                entry["seconds"] += took
                entry["cpu_seconds"] += cpu_seconds() - cpu
                entry["calls"] += 1
                if len(self.stack) <= 1 and label != "figures":  # progress inside a long phase
                    print(f"  {time.strftime('%H:%M:%S')} part {key} done in {took:.1f}s", file=sys.stderr, flush=True)
        return timed

    def take(self) -> dict[str, dict]:
        taken, self.seconds = self.seconds, {}
        return dict(sorted(taken.items()))


def run_child(name: str, world: Path, folder: Path, customers: int, seed: int) -> dict:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="  %(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # its category axis notes, once per figure
    if name == "generate":
        from pipeline.demo.world import generate_world

        clock, result = Clock(), {}
        result["rows"] = generate_world(world, customers, seed, replace=True)
        clock.into(result)
        result["peak_gb"] = gb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return result
    return train(world, folder, customers)


def train(world: Path, folder: Path, customers: int) -> dict:
    """What run_training does, phase by phase, without MLflow."""
    from features.catalog import feature_catalog
    from features.model_input import all_cutoffs, build_training_frame, fold_rows, rows_at
    from models.evaluation import Choice, Horizons, evaluate_churn, evaluate_clv
    from models.forward import candidates
    from pipeline.config import model_params
    from pipeline.tables import load_tables
    from pipeline.train import demo_world_oracle, training_plans

    cfg = config(world, folder)
    plain_fit = candidates.fit_booster  # the baseline calls it unwrapped
    parts = PartTimes()
    parts.install()
    meter = Meter(parts, folder / PARTIAL)
    result = meter.result
    result |= {"code": code_version(), "customers": customers}
    with meter("validate"):
        tables = load_tables(world, dt.datetime.now(), cfg.data.quarantine_dir, "parquet", cfg.data.engine_memory_gb)
    plans = training_plans(tables, cfg)
    cutoffs = all_cutoffs(plans.values())
    result |= {"cutoffs": [c.isoformat() for c in cutoffs], "n_cutoffs": len(cutoffs),
               "plans": {kind: plan.as_dict() for kind, plan in plans.items()}}
    print(f"{len(cutoffs)} cutoffs {cutoffs[0]} .. {cutoffs[-1]}", file=sys.stderr, flush=True)
    with meter("frame") as info:
        frame = build_training_frame(tables, cfg, cutoffs)
        info["rows"] = len(frame)
    result |= {"frame_rows": len(frame), "frame_columns": frame.shape[1],
               "frame_gb": float(frame.memory_usage(deep=True).sum()) / 1024**3}
    catalog = feature_catalog(cfg.features)
    features = [f.name for f in catalog if f.name in frame]
    params = model_params(cfg.model)
    horizons = Horizons(cfg.churn.horizon_days, cfg.clv.horizon_days)
    with meter("slices"):  # the production rows; each model's folds are sliced inside its phase
        production = {kind: rows_at(frame, plan.production) for kind, plan in plans.items()}
    result["rows"] = fold_sizes(frame, plans, production)
    result["tuned"] = {kind: bool(params[kind]["tuned"]) for kind in plans}
    choice = {kind: Choice(cfg.model.seed, cfg.training.selection_tolerance, params[kind]["tuned"] or None,
                           params[kind]["explicit"] or None) for kind in plans}
    oracle = demo_world_oracle(cfg)  # read per origin inside evaluate_churn
    slice_folds = parts.wrap("fold_rows", fold_rows)

    rows = production["churn"]
    point = candidates.lightgbm_grid(len(rows), None, params["churn"]["explicit"] or None)["medium"]
    point = point | {"n_estimators": BASELINE_TREES}
    result["baseline_params"] = point
    with meter("baseline_before"):
        plain_fit("churn", point, cfg.model.seed, rows, rows["is_churned"], features)
    # As run_training: each model's folds are built for its call and let go after (they are copies).
    with meter("churn"):
        churn = evaluate_churn(slice_folds(frame, plans["churn"]), production["churn"], features, choice["churn"],
                               horizons, catalog, oracle, cfg.scoring.reasons_per_customer)
    result["churn"] = outcome(churn)
    with meter("clv"):
        clv = evaluate_clv(slice_folds(frame, plans["clv"]), production["clv"], features, choice["clv"], horizons)
    result["clv"] = outcome(clv)
    with meter("baseline_after"):
        plain_fit("churn", point, cfg.model.seed, rows, rows["is_churned"], features)
    phases = meter.phases
    result["churn_per_baseline"] = phases["churn"]["seconds"] / phases["baseline_before"]["seconds"]
    result["clv_per_baseline"] = phases["clv"]["seconds"] / phases["baseline_after"]["seconds"]
    result["churn_per_baseline_cpu"] = phases["churn"]["cpu_seconds"] / phases["baseline_before"]["cpu_seconds"]
    result["clv_per_baseline_cpu"] = phases["clv"]["cpu_seconds"] / phases["baseline_after"]["cpu_seconds"]
    result["peak_gb"] = meter.peak
    result["code_after"] = code_version()  # differs from "code" when the sources changed during the run
    tables.close()
    (folder / PARTIAL).unlink(missing_ok=True)  # the whole result goes to the parent
    return result


def fold_sizes(frame, plans: dict, production: dict) -> dict:
    """Rows of every fold's training and origin cutoffs, and of the production refit, per model."""
    counts = frame["cutoff_date"].dt.date.value_counts()
    rows = lambda dates: int(sum(counts.get(d, 0) for d in dates))  # noqa: E731
    return {kind: {"fold_training": [rows(f.training) for f in plan.folds],
                   "fold_origin": [rows([f.origin]) for f in plan.folds],
                   "production": len(production[kind])} for kind, plan in plans.items()}


def outcome(evaluation) -> dict:
    """The backtest's choice, every candidate's setting and mean primary metric, and the metrics."""
    bt = evaluation.backtest
    return {"chosen": bt.chosen, "why": bt.why, "origins": [o.isoformat() for o in bt.origins],
            "candidates": {name: {"setting": r.setting, "calibration": getattr(r, "calibration", None),
                                  "mean_primary": r.mean(bt.primary), "settings_tried": r.settings_tried,
                                  "params": {k: v for k, v in r.params.items() if k != "parts"}}
                           for name, r in bt.results.items()},
            "metrics": {k: float(v) for k, v in evaluation.metrics.items()}}


if __name__ == "__main__":
    main()
