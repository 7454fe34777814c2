"""Configuration: YAML under configs/, loaded once at the entry point into typed objects.

Every section is a frozen Pydantic model that forbids unknown keys, so a typo such as
`horizon_dayz` is rejected with its key path instead of being silently ignored. Functions
receive only the section they need. Secrets never live here: MLflow reads
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / MLFLOW_TRACKING_TOKEN from the
environment, and MLFLOW_TRACKING_URI overrides `tracking.uri`.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from models.reason_families import FAMILIES, FAMILY_NAMES
from pipeline.at_risk.tiers import THRESHOLD_TIERS, TIERS
from pipeline.contract import TABLES
from pipeline.errors import ConfigError

PositiveDays = Annotated[int, Field(gt=0, le=3650)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
ReasonFamilyName = Literal[FAMILY_NAMES]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(Section):
    """The Spark session of `data.engine: spark` (pipeline/engines/spark.py)."""

    # local[N] runs Spark inside this machine with N cores (tests, small machines); a cluster
    # URL (spark://host:7077, yarn, k8s://...) runs it there
    master: str = "local[2]"
    app_name: str = "churn-pipeline"
    # any Spark setting, e.g. {"spark.executor.memory": "8g", "spark.sql.shuffle.partitions": "400"}
    options: dict[str, str] = Field(default_factory=dict)


class DataConfig(Section):
    path: Path = Path("data/demo")
    format: Literal["auto", "csv", "parquet"] = "auto"
    # Where the contract's tables are read from: the files in `path` (default), or a schema of
    # a PostgreSQL database, `postgresql://user@host:5432/dbname`. The password never goes
    # here: it comes from the environment (PGPASSWORD, or a ~/.pgpass file), as psql's does.
    source: Annotated[str, Field(pattern=r"^postgres(ql)?://")] | None = None
    source_schema: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "public"
    # The engine the tables are validated in and the features, labels and scores computed
    # by: duckdb (embedded, default; up to a few million customers on one machine) or spark
    # (the same definitions on a Spark cluster, `spark` below).
    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkConfig = SparkConfig()
    quarantine_dir: Path = Path("outputs/quarantine")
    # The embedded engine (DuckDB) keeps the validated tables in a scratch database file
    # under engine_dir (default: the system's temporary folder) and spills there beyond
    # engine_memory_gb, instead of growing past it. While a feature frame is filled, the
    # engine keeps to this less the frame's size (at least 1 GB): the two share it.
    engine_memory_gb: Annotated[float, Field(gt=0.1, le=1024)] = 3.0
    engine_dir: Path | None = None
    # Scoring stops when the newest transaction is more than this many days before the
    # as-of date (the export did not refresh); other tables only with a limit of their own.
    max_staleness_days: Annotated[int, Field(ge=0, le=3650)] = 3
    max_staleness_days_by_table: dict[str, Annotated[int, Field(ge=0, le=3650)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_password_in_the_source(self) -> DataConfig:
        from urllib.parse import urlsplit

        if self.source and urlsplit(self.source).password is not None:
            raise ValueError("data.source holds a password: remove it and set PGPASSWORD in the environment (or use "
                             "a ~/.pgpass file); a config file is copied, logged and committed, a password must not be")
        return self

    @model_validator(mode="after")
    def _staleness_of_event_tables(self) -> DataConfig:
        timed = sorted(name for name, table in TABLES.items() if table.event_time)
        wrong = sorted(set(self.max_staleness_days_by_table) - set(timed))
        if wrong:
            raise ValueError(f"max_staleness_days_by_table names {wrong}: a limit needs a table with event times, "
                             f"one of {timed}")
        return self


class ChurnConfig(Section):
    definition: Literal["inactivity", "subscription"] = "inactivity"
    horizon_days: PositiveDays = 90
    active_lookback_days: PositiveDays = 365
    subscription_grace_days: Annotated[int, Field(ge=0, le=365)] = 30

    @model_validator(mode="after")
    def _lookback_covers_horizon(self) -> ChurnConfig:
        # A customer must be observable for at least as long as we predict ahead,
        # otherwise "active" and "churned" describe windows of different lengths.
        if self.active_lookback_days < self.horizon_days:
            raise ValueError(
                f"active_lookback_days ({self.active_lookback_days}) is shorter than "
                f"horizon_days ({self.horizon_days})"
            )
        return self


class ClvConfig(Section):
    horizon_days: PositiveDays = 365


class FeaturesConfig(Section):
    windows: list[PositiveDays] = Field(default_factory=lambda: [30, 90, 180, 365], min_length=1)
    trend_days: PositiveDays = 90
    # Interaction channels that get their own features; names become column names.
    channels: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]] = Field(
        default_factory=lambda: ["email", "web", "app", "social", "phone", "store"]
    )
    ticket_resolution_target_days: Annotated[float, Field(gt=0)] = 7.0
    # Spine rows (customer x cutoff) per engine pass. Each pass joins its customers' events
    # to their cutoffs, so this bounds the engine's memory; a larger batch rescans less.
    batch_rows: Annotated[int, Field(ge=1000)] = 1_500_000

    @model_validator(mode="after")
    def _sorted_unique_windows(self) -> FeaturesConfig:
        if sorted(set(self.windows)) != self.windows:
            raise ValueError("windows must be strictly increasing, e.g. [30, 90, 180, 365]")
        return self


class TrainingConfig(Section):
    cutoffs: Annotated[int, Field(ge=2, le=60)] = 6
    spacing_days: PositiveDays = 30
    # Walk-forward backtest: this many origins, spacing_days apart, judge every choice.
    backtest_origins: Annotated[int, Field(ge=2, le=24)] = 3
    # The latest backtest origin. Default: the latest first-of-month whose label window is
    # complete before the data ends. The production refit always uses the freshest labels.
    validation_cutoff: dt.date | None = None
    # A simpler candidate ships unless a more complex one beats it by more than the
    # backtest's noise (the standard error of their per-origin differences) or this much.
    selection_tolerance: Annotated[float, Field(ge=0, le=0.1)] = 0.002
    # Learn from at most this many customers (all their cutoffs), drawn by a stable hash of
    # customer_id and model.seed, so that the stack fits the trainer's one machine (LightGBM
    # is single-node, with Spark too: README, "Beyond one machine"). None: every customer.
    max_customers: Annotated[int, Field(ge=1000)] | None = None


class ModelConfig(Section):
    seed: int = 42
    churn_params: dict[str, float | int | str] = Field(default_factory=dict)
    clv_params: dict[str, float | int | str] = Field(default_factory=dict)
    # Where `churn tune` writes best parameters and `churn train` picks them up.
    tuned_params_path: Path = Path("configs/tuned_params.yaml")


class TrackingConfig(Section):
    uri: str = "sqlite:///mlflow.db"
    artifact_dir: Path = Path("mlartifacts")
    experiment: str = "churn-pipeline"
    churn_model_name: str = "churn"
    clv_model_name: str = "clv"
    # A tracking server that does not answer within this many seconds is reported as
    # unreachable; a local store that another process holds locked is retried this long.
    timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0
    busy_timeout_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0

    def resolved_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or self.uri


class CsvOptions(Section):
    delimiter: Literal[",", ";", "\t", "|"] = ","
    decimal: Literal[".", ","] = "."
    excel_bom: bool = False

    @model_validator(mode="after")
    def _decimal_differs_from_delimiter(self) -> CsvOptions:
        if self.delimiter == self.decimal:
            raise ValueError("decimal separator must differ from the delimiter")
        return self


class _TierThresholds(Section):
    """Churn probability at which each tier of the registry begins (pipeline/at_risk/tiers.py)."""

    @model_validator(mode="after")
    def _ordered(self) -> _TierThresholds:
        for higher, lower in zip(THRESHOLD_TIERS, THRESHOLD_TIERS[1:], strict=False):
            if getattr(self, lower.name) > getattr(self, higher.name):
                raise ValueError(f"tier threshold {lower.name} must not exceed {higher.name}")
        return self

    def __getitem__(self, tier: str) -> float:
        return getattr(self, tier)


# One field per tier of the registry, so that a tier added there is configurable here, and
# an unknown tier name is rejected like any unknown key.
TierConfig = create_model(
    "TierConfig", __base__=_TierThresholds,
    **{tier.name: (Probability, tier.default_threshold) for tier in THRESHOLD_TIERS},
)
TierName = Literal[TIERS]


class SegmentRule(Section):
    """An RFM segment: recency and frequency scores (1-5, 5 = best) within ranges."""

    name: str
    recency: tuple[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=1, le=5)]] = (1, 5)
    frequency: tuple[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=1, le=5)]] = (1, 5)


DEFAULT_SEGMENTS = [
    SegmentRule(name="champions", recency=(4, 5), frequency=(4, 5)),
    SegmentRule(name="loyal", recency=(3, 5), frequency=(3, 5)),
    SegmentRule(name="new", recency=(4, 5), frequency=(1, 1)),
    SegmentRule(name="promising", recency=(3, 5), frequency=(1, 2)),
    SegmentRule(name="at risk", recency=(1, 2), frequency=(3, 5)),
    SegmentRule(name="lost", recency=(1, 1), frequency=(1, 2)),
    SegmentRule(name="hibernating", recency=(1, 2), frequency=(1, 2)),
]


class ActionConfig(Section):
    """What to do about a customer, by the family of their strongest risk driver."""

    # Keys are reason families of the registry (models/reason_families.py); a family left
    # out keeps its default action.
    by_reason: dict[ReasonFamilyName, str] = Field(
        default_factory=lambda: {family.name: family.action for family in FAMILIES.values()})

    @model_validator(mode="after")
    def _every_family_has_an_action(self) -> ActionConfig:
        defaults = {family.name: family.action for family in FAMILIES.values()}
        object.__setattr__(self, "by_reason", defaults | dict(self.by_reason))
        return self

    # Non-members whose strongest reason is one of these families and whose predicted CLV
    # reaches the minimum are invited to the loyalty programme instead.
    loyalty_invitation: str = "loyalty-programme invitation"
    loyalty_invitation_families: list[ReasonFamilyName] = Field(default_factory=lambda: ["purchase_lapse", "profile"])
    loyalty_invitation_min_clv: Annotated[float, Field(ge=0)] = 200.0
    low_risk: str = "no action"
    default: str = "personalised offer"


CrmName = Literal["hubspot", "salesforce", "zoho"]
ColumnName = Annotated[str, Field(min_length=1)]
# The date patterns a Salesforce user's locale shows (en_US, ISO, en_GB, de_DE): the Data
# Import Wizard reads a date as the importing user's locale writes it.
SalesforceDateFormat = Literal["MM/dd/yyyy", "yyyy-MM-dd", "dd/MM/yyyy", "dd.MM.yyyy"]


class CrmConfig(Section):
    """The customers columns the CRM import files are built from (`scoring.exports`)."""

    email_column: ColumnName = "email"  # required in customers when exports are configured
    first_name_column: ColumnName = "first_name"
    last_name_column: ColumnName = "last_name"
    # A full name, split into first and last name ("Last, First", or at the last space) for
    # customers without a first or last name of their own.
    name_column: ColumnName = "name"
    # The CRM's own id of the customer (e.g. a Salesforce Contact Id); when set, the
    # Salesforce file matches on it instead of on the email.
    record_id_column: ColumnName | None = None
    salesforce_date_format: SalesforceDateFormat = "MM/dd/yyyy"


class ScoringConfig(Section):
    output_dir: Path = Path("outputs/at_risk")
    formats: list[Literal["csv", "parquet", "xlsx"]] = Field(default_factory=lambda: ["csv", "parquet", "xlsx"])
    # at_risk.xlsx is for people: it holds the first `xlsx_max_rows` customers of the list
    # (the most value at risk); CSV and Parquet hold every row, for machines and imports.
    xlsx_max_rows: Annotated[int, Field(ge=1, le=1_048_575)] = 20_000
    # The currency of amounts (CLV, value at risk), shown in summary.html and the workbook.
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    tiers: TierConfig = TierConfig()
    passthrough_columns: list[str] = Field(default_factory=list)
    csv: CsvOptions = CsvOptions()
    segments: list[SegmentRule] = Field(default_factory=lambda: list(DEFAULT_SEGMENTS), min_length=1)
    actions: ActionConfig = ActionConfig()
    reasons_per_customer: Annotated[int, Field(ge=1, le=5)] = 3
    # Population stability index of the score and top features against training: above
    # `drift_warn_psi` the manifest warns. Stopping is opt-in: an input named in
    # `drift_stop_on` ("churn_probability" for the score, or a feature name) above
    # `drift_fail_psi` stops the run before anything is written.
    drift_warn_psi: Annotated[float, Field(gt=0)] = 0.1
    drift_fail_psi: Annotated[float, Field(gt=0)] = 0.5
    drift_stop_on: list[str] = Field(default_factory=list)
    top_n: Annotated[int, Field(gt=0)] | None = None
    only_tiers: list[TierName] | None = None
    # Import files for these CRMs beside the list (crm/<crm>/), built from the `crm` columns.
    exports: list[CrmName] = Field(default_factory=list)
    crm: CrmConfig = CrmConfig()

    @model_validator(mode="after")
    def _each_crm_once(self) -> ScoringConfig:
        if len(set(self.exports)) != len(self.exports):
            raise ValueError(f"exports names a CRM twice ({self.exports}); name each once")
        return self


class PromotionConfig(Section):
    """When a newly trained model replaces the champion (`churn train --promote auto`): it must
    beat the champion on the same validation customers by `min_gain` (ROC AUC for churn,
    Spearman for CLV) or by a paired-bootstrap 95% interval that excludes zero, and the churn
    model's ECE must not be worse than the champion's by more than `max_ece_increase`."""

    min_gain: Annotated[float, Field(ge=0, le=1)] = 0.005
    max_ece_increase: Annotated[float, Field(ge=0, le=1)] = 0.01


class DemoConfig(Section):
    customers: Annotated[int, Field(gt=0)] = 4000
    seed: int = 7


class Config(Section):
    data: DataConfig = DataConfig()
    churn: ChurnConfig = ChurnConfig()
    clv: ClvConfig = ClvConfig()
    features: FeaturesConfig = FeaturesConfig()
    training: TrainingConfig = TrainingConfig()
    model: ModelConfig = ModelConfig()
    tracking: TrackingConfig = TrackingConfig()
    scoring: ScoringConfig = ScoringConfig()
    promotion: PromotionConfig = PromotionConfig()
    demo: DemoConfig = DemoConfig()


def load_config(path: Path, data_dir: Path | None = None) -> Config:
    """Read and validate a YAML config. Relative paths in it are resolved against the
    project folder (see `project_folder`), never against the shell's working directory;
    `data_dir` (the --data option) overrides `data.path` and is relative to where the
    command runs, as any command-line path."""
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist. Pass --config PATH to a YAML file.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections at the top level.")
    if data_dir is not None:
        raw.setdefault("data", {})
        raw["data"]["path"] = str(data_dir.resolve())
    return anchored(parse_config(raw, source=str(path)), project_folder(path))


def project_folder(config_path: Path) -> Path:
    """What relative paths in a config mean: the project folder. A config in a `configs/`
    folder belongs to the project above it (configs/default.yaml -> the project root);
    any other config file anchors its paths at its own folder."""
    folder = config_path.resolve().parent
    return folder.parent if folder.name == "configs" else folder


def anchored(cfg: Config, base: Path) -> Config:
    """The config with every relative path (data, quarantine, engine, tuned parameters,
    tracking store and artifacts, outputs) made absolute under `base`."""
    def at(path: Path | None) -> Path | None:
        return path if path is None or path.is_absolute() else base / path

    uri = cfg.tracking.uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and uri != prefix + ":memory:":
        uri = prefix + str(base / uri[len(prefix):])
    return cfg.model_copy(update={
        "data": cfg.data.model_copy(update={"path": at(cfg.data.path), "quarantine_dir": at(cfg.data.quarantine_dir),
                                            "engine_dir": at(cfg.data.engine_dir)}),
        "model": cfg.model.model_copy(update={"tuned_params_path": at(cfg.model.tuned_params_path)}),
        "tracking": cfg.tracking.model_copy(update={"uri": uri, "artifact_dir": at(cfg.tracking.artifact_dir)}),
        "scoring": cfg.scoring.model_copy(update={"output_dir": at(cfg.scoring.output_dir)}),
    })


def load_tuned_params(path: Path) -> dict[str, dict]:
    """Parameters written by `churn tune`, {'churn': {...}, 'clv': {...}}; empty when none."""
    if not path.is_file():
        return {"churn": {}, "clv": {}}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {"churn": loaded.get("churn", {}), "clv": loaded.get("clv", {})}


def model_params(cfg: ModelConfig) -> dict[str, dict[str, dict]]:
    """Per model, the LightGBM settings the backtest may use: `tuned` (what `churn tune`
    found: one more point of the complexity grid) and `explicit` (given in the config:
    applied over every point)."""
    tuned = load_tuned_params(cfg.tuned_params_path)
    return {"churn": {"tuned": tuned["churn"], "explicit": dict(cfg.churn_params)},
            "clv": {"tuned": tuned["clv"], "explicit": dict(cfg.clv_params)}}


def parse_config(raw: dict, source: str = "<dict>") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key_path = ".".join(str(p) for p in err["loc"]) or "<top level>"
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                message = "unknown key (check its spelling and section)"
            problems.append(f"  {key_path}: {message}")
        raise ConfigError(
            f"Config {source} is invalid:\n" + "\n".join(problems) + "\nFix these keys and rerun."
        ) from exc
