"""A source's mapping: which export columns feed which fields, how their values are written,
and the value maps. One YAML file per source under configs/sources/ (`churn import SOURCE`),
or a user's own copy (`churn import --source-config FILE`).

The mapping is data; the structure of a kind of export (orders with line items, tickets,
contacts, email events, web events, survey responses) is code, in pipeline/importers/kinds/.
So an export in another language, with renamed columns, or from another vendor of the same
kind (Marketo instead of HubSpot) needs an edited copy of a file, not a program.

    source: shopify            # the name its converted rows are kept under (imports/<source>/)
    kind: orders               # which converter reads it
    reader: {format: auto, encoding: auto, delimiter: auto, decimal: auto, timezone: UTC}
    fields:                    # field -> column(s) of the export; the first one present is read
      order_id: {column: Name, type: id}
      paid_at: {column: Paid at, type: timestamp, formats: ["%Y-%m-%d %H:%M:%S %z"]}
    values:                    # field -> {value in the export: what it means}
      financial_status: {paid: purchase, pending: not_paid}
    link:                      # how a row finds its customer, tried in order
      - {field: email, customers_column: email}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError

SOURCES_DIR = Path(__file__).resolve().parents[2] / "configs" / "sources"

FieldType = Literal["text", "id", "email", "timestamp", "number", "integer", "boolean",
                    "epoch_s", "epoch_ms", "epoch_us"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Join(_Strict):
    """A JSON export's side-loaded records (Zendesk's `users`, `metric_sets`): the record of
    the list `records` whose `key` equals the main record's field `by` is read as columns
    `<as>.<field>` (e.g. `requester.email`). (Not `on`: YAML reads a bare `on` as true.)"""

    records: str
    key: str
    by: str
    as_: str = Field(alias="as")


class Reader(_Strict):
    # auto: by the file's name (.csv/.txt -> csv; .json -> one JSON document, or one record per
    # line when the file holds several documents; .ndjson/.jsonl -> one record per line)
    format: Literal["auto", "csv", "json", "ndjson"] = "auto"
    # auto: UTF-8 (with or without a byte-order mark), else Windows-1252, which is what Excel
    # on Windows writes when a CSV is re-saved
    encoding: str = "auto"
    # auto: whichever of , ; tab | splits the header into the most of the mapping's columns
    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    # auto: a comma when the delimiter is ; (a European spreadsheet's CSV), else a point
    decimal: Literal["auto", ".", ","] = "auto"
    # the time zone of times written without an offset (a ServiceNow export is in its
    # exporting user's zone); times with an offset or epoch numbers are absolute
    timezone: str = "UTC"
    # cell texts that mean "no value" besides an empty cell (Marketo's extract writes null)
    missing_values: list[str] = Field(default_factory=list)
    records: str | None = None  # JSON: the list of records inside the document (e.g. `tickets`)
    joins: list[Join] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{zone!r} is not a time zone name (such as Europe/Berlin or UTC)") from None
        return zone


class FieldSpec(_Strict):
    column: list[str]  # the export's column (or JSON path a.b); the first one present is read
    type: FieldType = "text"
    formats: list[str] = Field(default_factory=list)  # timestamp: strftime formats, tried in order
    required: bool = True  # the column must be in the export (its values may still be empty)
    # a key inside the JSON object the cell holds (Marketo's `attributes`: "Is Bot Activity")
    key: str | None = None
    description: str = ""

    @field_validator("column", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> list[str]:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _timestamps_have_formats(self) -> FieldSpec:
        if self.type == "timestamp" and not self.formats:
            raise ValueError("a timestamp field needs `formats` (strftime patterns such as '%Y-%m-%d %H:%M:%S %z')")
        return self


class LinkRule(_Strict):
    """Rows are linked to a customer by `field` equal to the customers table's
    `customers_column` (emails compared trimmed and lower-cased)."""

    field: str
    customers_column: str


Kind = Literal["orders", "tickets", "contacts", "email_events", "web_events", "survey_responses"]


class SourceMapping(_Strict):
    source: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    kind: Kind
    description: str = ""
    reader: Reader = Reader()
    fields: dict[str, FieldSpec]
    values: dict[str, dict[str, Any]] = Field(default_factory=dict)
    link: list[LinkRule] = Field(default_factory=list)
    # kind-specific settings (documented in each kind's module), e.g. the CSAT rule
    options: dict[str, Any] = Field(default_factory=dict)
    path: Path | None = None  # where it was read from, for messages

    @field_validator("values", mode="before")
    @classmethod
    def _numbers_as_written(cls, values: Any) -> Any:
        """Value-map keys as the export writes them: YAML reads a bare `10: open` (Marketo's
        activity type id) as the number 10."""
        if not isinstance(values, dict):
            return values
        return {name: {str(k) if type(k) in (int, float) else k: v for k, v in table.items()}
                if isinstance(table, dict) else table for name, table in values.items()}

    @model_validator(mode="after")
    def _maps_and_links_name_fields(self) -> SourceMapping:
        unknown = sorted((set(self.values) | {rule.field for rule in self.link}) - set(self.fields))
        if unknown:
            raise ValueError(f"`values` or `link` name {unknown}, which are not under `fields`")
        return self

    def has(self, field: str) -> bool:
        return field in self.fields


def builtin_sources() -> list[str]:
    return sorted(p.stem for p in SOURCES_DIR.glob("*.yaml"))


def mapping_path(source: str) -> Path:
    path = SOURCES_DIR / f"{source}.yaml"
    if not path.is_file():
        raise ConfigError(f"Unknown source {source!r}: the built-in sources are {', '.join(builtin_sources())}. "
                          "For another system, copy the closest file of configs/sources/, edit its columns, and "
                          "pass it with --source-config FILE.")
    return path


def load_mapping(path: Path) -> SourceMapping:
    """Read and validate a mapping file; a mistake is a ConfigError naming the key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the source mapping {path}: {exc.strerror or exc}.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"Source mapping {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"Source mapping {path} must be a YAML mapping with source, kind and fields.")
    try:
        return SourceMapping(**raw, path=Path(path))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
                             for err in exc.errors())
        raise ConfigError(f"Source mapping {path} is invalid: {problems}.") from None
