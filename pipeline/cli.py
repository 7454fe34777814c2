"""The `churn` command: one subcommand per step of the pipeline.

Every subcommand loads and validates the config once, here, and passes typed sections on.
Expected failures (bad config, bad data, no model yet) end with a one-paragraph message and
a non-zero exit code; --debug shows the full traceback."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from models.errors import ModelDataError
from pipeline.config import Config, DemoConfig, load_config, project_folder
from pipeline.errors import DataError, Interrupted, PipelineError, on_signals, raise_signalled
from pipeline.logs import mask_credentials, setup_logging, stage

app = typer.Typer(
    help="Predict which customers are about to leave and what they are worth.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
log = logging.getLogger("churn")

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML config file.")]
DataOption = Annotated[
    Path | None, typer.Option("--data", help="Folder of input tables; overrides data.path in the config.")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")]
DEFAULT_CONFIG = Path("configs/default.yaml")


def parse_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def parse_zone(value: str) -> str:
    """A time zone name, checked as the mapping's reader.timezone is."""
    from pydantic import ValidationError

    from pipeline.importers.mapping import Reader

    try:
        return Reader(timezone=value).timezone
    except ValidationError as exc:
        raise typer.BadParameter(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None


def handles_errors(command: Callable) -> Callable:
    """Turn expected failures into a clear last log line and an exit code."""

    name = command.__name__.rstrip("_")  # `import_` is `churn import`

    @functools.wraps(command)
    def wrapper(*args, debug: bool = False, **kwargs):
        setup_logging(verbose=debug)
        try:
            with on_signals(raise_signalled, signals=(signal.SIGTERM,)):  # SIGTERM stops like Ctrl-C
                return command(*args, **kwargs)
        except (PipelineError, ModelDataError) as exc:
            if debug:
                raise
            log.error("%s", exc)
            sys.exit(DataError.exit_code if isinstance(exc, ModelDataError) else exc.exit_code)
        except (typer.BadParameter, typer.Exit, typer.Abort, *COMMAND_LINE_ERRORS):
            raise  # a mistyped option or value: the command line's own usage error (exit 2)
        except KeyboardInterrupt as exc:  # a signal outside a step that handles it: stop, in one line
            if debug:
                raise
            stopped = Interrupted(f"`churn {name}` was stopped before it finished; nothing it had not "
                                  "published yet was written, and earlier outputs are as they were.",
                                  getattr(exc, "signum", signal.SIGINT))
            log.error("%s", stopped)
            sys.exit(stopped.exit_code)
        except Exception as exc:  # noqa: BLE001 - a bug: one paragraph on the console, the traceback in a file
            if debug:
                raise
            report = write_crash_report(name, exc, kwargs.get("config"))
            first_line = (mask_credentials(str(exc)).strip().splitlines() or [""])[0]
            log.error("`churn %s` failed unexpectedly with %s: %s. This looks like a bug in churn-pipeline rather "
                      "than a problem with the data or the config; the previous outputs are untouched. The full "
                      "traceback is in %s (or rerun with --debug to see it here); please report it with that file.",
                      name, type(exc).__name__, first_line, report)
            sys.exit(UNEXPECTED_EXIT_CODE)

    return wrapper


UNEXPECTED_EXIT_CODE = 1
# The command line's own errors (typer carries its own copy of click): usage errors, exit 2.
COMMAND_LINE_ERRORS = tuple(cls for cls in type(typer.BadParameter("")).__mro__ if cls.__name__ == "ClickException")


def write_crash_report(command: str, exc: BaseException, config: Path | None) -> Path:
    """The masked traceback of an unexpected failure, in <project>/outputs/logs/ (the system's
    temporary folder when that cannot be written); return its path."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = mask_credentials(f"churn {command} failed at {stamp}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__)))
    name = f"churn-{command}-{stamp}-{os.getpid()}.log"
    for folder in (project_folder(config or DEFAULT_CONFIG) / "outputs" / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return Path(name)  # nowhere writable: the name at least says when


def _config(config: Path, data: Path | None) -> Config:
    return load_config(config, data_dir=data)


def _tables(cfg: Config, write_quarantine: bool = True):
    from pipeline.engines import open_tables

    with stage("validate input tables") as info:
        tables = open_tables(cfg.data, dt.datetime.now(), cfg.data.quarantine_dir if write_quarantine else None)
        info["tables"] = len(tables.present)
    return tables


@app.command()
@handles_errors
def init(
    folder: Annotated[Path, typer.Argument(help="A new or empty folder for your project.")],
    debug: DebugOption = False,
) -> None:
    """Start on your own data: write FOLDER/config.yaml (every key, commented, with its default)
    and FOLDER/data/README.txt (the tables and columns the data contract expects)."""
    from pipeline.starter import write_starter

    written = write_starter(folder)
    log.info("wrote %s; next: put your tables in %s, then `churn validate --config %s`", ", ".join(
        str(p) for p in written), folder / "data", folder / "config.yaml")


@app.command("import")
@handles_errors
def import_(
    arguments: Annotated[list[str], typer.Argument(
        metavar="SOURCE FILE...", help="The source (shopify, zendesk, servicenow, hubspot-contacts, "
        "hubspot-email-events, ga4, delighted: configs/sources/) and its export files; with --source-config, "
        "only the files.")],
    out: Annotated[Path, typer.Option("--out", help="Data folder to write the contract's tables into.")],
    customers: Annotated[Path | None, typer.Option(
        "--customers", help="Customers table (file or folder) to link rows to; default: the one in --out.")] = None,
    source_config: Annotated[Path | None, typer.Option(
        "--source-config", help="Your own mapping file (a copy of one in configs/sources/, edited).")] = None,
    timezone: Annotated[str | None, typer.Option(
        "--timezone", metavar="ZONE",
        help="Time zone of the export's times written without an offset (e.g. Europe/Berlin: a ServiceNow "
        "export is in the exporting user's zone); overrides the mapping's reader.timezone.")] = None,
    debug: DebugOption = False,
) -> None:
    """Convert a system's standard export into the data contract's tables in --out, linking each
    row to a customer (or setting it aside), and report what it read, wrote and left out."""
    from pipeline.importers import run_import
    from pipeline.importers.mapping import load_mapping, mapping_path

    if source_config is None and len(arguments) < 2:
        raise typer.BadParameter("give the SOURCE and at least one export FILE (or --source-config FILE and the "
                                 "export files)")
    mapping = load_mapping(source_config or mapping_path(arguments[0]))
    if timezone is not None:
        zone = parse_zone(timezone)
        mapping = mapping.model_copy(update={"reader": mapping.reader.model_copy(update={"timezone": zone})})
    files = [Path(a) for a in (arguments if source_config else arguments[1:])]
    with stage(f"import {mapping.source} ({mapping.kind}) from {len(files)} file(s)") as info:
        report = run_import(mapping, files, out, customers)
        info["rows_read"], info["records"] = report["rows_read"], report["records"]
    _log_import_report(report, out)


def _log_import_report(report: dict, out: Path) -> None:
    log.info("%s: %s rows read, %s records; written %s; matched to a customer %s; set aside %s (no customer), "
             "skipped %s", report["source"], f"{report['rows_read']:,}", f"{report['records']:,}",
             ", ".join(f"{name} {n:,}" for name, n in report["written"].items()), f"{report['matched']:,}",
             f"{report['unmatched']:,}", f"{report['skipped']:,}")
    for kind in ("unmatched_by_reason", "skipped_by_reason"):
        for reason, count in report[kind].items():
            log.info("  %s %s: %s", "set aside" if kind.startswith("unmatched") else "skipped", reason, f"{count:,}")
    for name, count in report["set_aside_by_contract"].items():
        log.warning("  %s: %s row(s) break a soft rule of the contract; `churn validate` sets them aside", name, count)
    log.info("report and set-aside rows in %s", out / "imports" / report["source"])


@app.command()
@handles_errors
def generate(
    customers: Annotated[int, typer.Option(help="Number of customers in the world.", min=1)] = DemoConfig().customers,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = DemoConfig().seed,
    out: Annotated[Path, typer.Option(help="Folder to write the world into: new, empty, or an earlier world "
                                           "(with --force).")] = Path("data/demo"),
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier demo world in --out (never other "
                                        "files).")] = False,
    debug: DebugOption = False,
) -> None:
    """Write a synthetic demo world (tables + truth/) in the data contract's format."""
    from pipeline.demo.world import generate_world

    if fmt not in ("parquet", "csv"):
        raise typer.BadParameter("--format must be parquet or csv")
    with stage(f"generate demo world of {customers:,} customers") as info:
        counts = generate_world(out, n_customers=customers, seed=seed, fmt=fmt, replace=force)
        info.update(counts)


@app.command()
@handles_errors
def validate(config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False) -> None:
    """Check the input tables against the data contract; report every violation at once."""
    cfg = _config(config, data)
    tables = _tables(cfg)
    from pipeline.engines import source_label

    log.info("input data in %s is valid: %s", source_label(cfg.data), json.dumps(tables.row_counts))


@app.command()
@handles_errors
def features(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Cutoff date YYYY-MM-DD.")] = None,
    out: Annotated[Path | None, typer.Option(help="Parquet file to write the frame to.")] = None,
    catalog: Annotated[bool, typer.Option("--catalog", help="Print the feature catalogue and exit.")] = False,
    config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False,
) -> None:
    """Build the feature frame of every active customer as of a date (or print the catalogue)."""
    from features.catalog import feature_catalog
    from features.model_input import features_at
    from pipeline.files import atomic_path

    cfg = _config(config, data)
    if catalog:
        for f in feature_catalog(cfg.features):
            typer.echo(f"{f.name:<36} {f.stage:<16} {f.description}")
        return
    if as_of is None:
        raise typer.BadParameter("--as-of YYYY-MM-DD is required (or use --catalog)")
    cutoff = parse_date(as_of)
    tables = _tables(cfg)
    with stage(f"features as of {cutoff}") as info:
        frame = features_at(tables, cfg, cutoff)
        info["customers"], info["columns"] = len(frame), frame.shape[1]
    target = out or project_folder(config) / "outputs" / "features" / f"features_{cutoff}.parquet"
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)
    log.info("feature frame written to %s", target)


@app.command()
@handles_errors
def train(
    promote: Annotated[str, typer.Option(help="auto: champion only if better; force; never.")] = "auto",
    config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False,
) -> None:
    """Judge the candidate models on a walk-forward backtest, refit the winners on the freshest
    labels, log and register them in MLflow."""
    from pipeline.train import run_training

    if promote not in ("auto", "force", "never"):
        raise typer.BadParameter("--promote must be auto, force or never")
    cfg = _config(config, data)
    summary = run_training(_tables(cfg), cfg, promote, config.read_text(encoding="utf-8"), config.stem)
    _log_training_summary(summary)


def _log_training_summary(summary: dict) -> None:
    c, v, chosen = summary["churn"], summary["clv"], summary["candidates"]
    log.info("churn model %s, walk-forward backtest (mean of %d origins): ROC AUC %.3f (+/- %.3f), PR AUC %.3f, "
             "Brier %.4f, ECE %.3f, top-decile lift %.2f", chosen["churn"], c["backtest_origins"], c["roc_auc"],
             c["roc_auc_std"], c["pr_auc"], c["brier"], c["ece"], c["top_decile_lift"])
    log.info("clv model %s, walk-forward backtest (mean of %d origins): Spearman %.3f (+/- %.3f), normalized Gini "
             "%.3f, MAE %.2f, aggregate error %.1f%%", chosen["clv"], v["backtest_origins"], v["spearman"],
             v["spearman_std"], v["normalized_gini"], v["mae"], v["aggregate_error_pct"])
    log.info("MLflow run %s: after `make ui`, open %s", summary["run_id"],
             ui_link(f"experiments/{summary['experiment_id']}/runs/{summary['run_id']}"))


def ui_link(page: str = "") -> str:
    """A page of the MLflow UI that `make ui` serves, in its model-training view (without the
    parameter, MLflow 3 opens on its GenAI view)."""
    return f"http://127.0.0.1:5000/#/{page}?workflowType=machine_learning"


@app.command()
@handles_errors
def tune(
    trials: Annotated[int, typer.Option(help="Trials per model (added to an interrupted study).", min=1)] = 30,
    timeout: Annotated[float | None, typer.Option(help="Seconds per model at most.")] = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage; studies resume from it (default: optuna.db in the project).")] = None,
    config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False,
) -> None:
    """Tune LightGBM with Optuna on the walk-forward backtest; `churn train` tries the result."""
    from pipeline.tune import run_tuning

    cfg = _config(config, data)
    run_tuning(_tables(cfg), cfg, trials, timeout, storage or f"sqlite:///{project_folder(config) / 'optuna.db'}")


@app.command()
@handles_errors
def score(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Scoring date YYYY-MM-DD (default: today).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Score and report, write nothing.")] = False,
    config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False,
) -> None:
    """Score every active customer with the champion models; write the dated at-risk list."""
    from contextlib import nullcontext

    from pipeline.files import run_lock
    from pipeline.score import run_scoring

    cfg = _config(config, data)
    date = parse_date(as_of) if as_of else dt.date.today()
    # One run at a time, for the whole run: a second one stops here, before reading anything.
    # A dry run writes nothing, so it neither needs the lock nor creates the output folder.
    with nullcontext() if dry_run else run_lock(cfg.scoring.output_dir):
        manifest = run_scoring(_tables(cfg), cfg, date, dry_run=dry_run)
    tiers = ", ".join(f"{count:,} {tier}" for tier, count in manifest["customers_per_tier"].items())
    log.info("scored %s customers (%s); value at risk %s %s", f"{manifest['customers_scored']:,}", tiers,
             f"{manifest['total_value_at_risk']:,.2f}", manifest["currency"])


@app.command()
@handles_errors
def report(
    date_from: Annotated[
        str | None, typer.Option("--from", help="First day YYYY-MM-DD (default: 2 years before --to).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Day after the last YYYY-MM-DD (default: end of data).")
    ] = None,
    period: Annotated[str, typer.Option(help="month or quarter.")] = "month",
    out: Annotated[Path | None, typer.Option(
        help="Folder for kpi_report.html and the CSVs (default: outputs/report in the project).")] = None,
    config: ConfigOption = DEFAULT_CONFIG, data: DataOption = None, debug: DebugOption = False,
) -> None:
    """Retention KPI report: retention, churn, repeat purchases, cohorts, CLV, NPS, MRR."""
    from pipeline.reporting.report import build_kpi_report

    if period not in ("month", "quarter"):
        raise typer.BadParameter("--period must be month or quarter")
    cfg = _config(config, data)
    tables = _tables(cfg)
    end = parse_date(date_to) if date_to else tables.last_event_at().date() + dt.timedelta(days=1)
    start = parse_date(date_from) if date_from else end.replace(year=end.year - 2, day=1)
    paths = build_kpi_report(tables, cfg, start, end, period, out or project_folder(config) / "outputs" / "report")
    log.info("KPI report written: %s", paths["html"])


@app.command()
@handles_errors
def demo(
    customers: Annotated[int | None, typer.Option(help="Customers in the demo world (default: config).")] = None,
    config: ConfigOption = DEFAULT_CONFIG, debug: DebugOption = False,
) -> None:
    """All of it, end to end: generate a demo world, validate, train, score."""
    from pipeline.demo import check_world_folder
    from pipeline.demo.world import generate_world
    from pipeline.files import run_lock
    from pipeline.score import run_scoring
    from pipeline.train import run_training

    cfg = _config(config, None)
    check_world_folder(cfg.data.path, replace=True)  # refuse a user's folder before touching anything
    # The whole demo holds the run lock: a scoring run started meanwhile must not read a world
    # that is being replaced under it.
    with run_lock(cfg.scoring.output_dir):
        with stage("generate demo world") as info:
            # data.path may hold an earlier demo world (replaced), never anything else (refused).
            info.update(generate_world(cfg.data.path, n_customers=customers or cfg.demo.customers,
                                       seed=cfg.demo.seed, replace=True))
        tables = _tables(cfg)
        summary = run_training(tables, cfg, "auto", config.read_text(encoding="utf-8"), config.stem)
        _log_training_summary(summary)
        as_of = tables.last_event_at().date() + dt.timedelta(days=1)
        manifest = run_scoring(tables, cfg, as_of)
    log.info("demo done: at-risk list of %d customers in %s", manifest["customers_listed"], manifest["output_dir"])


if __name__ == "__main__":
    app()
