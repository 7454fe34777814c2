"""Checks made before tonight's scoring does any work: the input is fresh, every table the
champions learned from is there, the config fits the data. A check that fails stops the
run with what is wrong in words; one that only warns goes into the manifest."""

from __future__ import annotations

import datetime as dt
import logging

from features.catalog import STAGES
from models.lifetime import LIFETIME_FEATURES
from pipeline.at_risk.crm.contacts import check_contact_columns
from pipeline.at_risk.listing import AT_RISK_COLUMNS
from pipeline.at_risk.scores import check_passthrough_columns, drift_reference
from pipeline.config import Config
from pipeline.contract import TABLES
from pipeline.errors import ConfigError, DataError
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def preflight(tables: Tables, cfg: Config, as_of: dt.date, champions) -> list[str]:
    """Stop on stale input, a table the champions need, or config that cannot work with the
    data (passthrough or CRM columns customers lacks); return the warnings (also logged)."""
    check_freshness(tables, cfg, as_of)
    check_champion_tables(tables, cfg, champions)
    check_drift_stops(cfg, champions[0])
    check_passthrough_names(cfg)
    check_passthrough_columns(tables, cfg.scoring.passthrough_columns)
    check_contact_columns(tables, cfg.scoring)
    warnings = unlisted_channels(tables, cfg)
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def newest_event(tables: Tables, table: str) -> dt.date | None:
    column = TABLES[table].event_time
    newest = tables.scalar(f"SELECT max({column}) FROM {table}")
    return None if newest is None else newest.date()


def check_freshness(tables: Tables, cfg: Config, as_of: dt.date) -> None:
    """The newest transaction (and the newest event of every table with a limit of its own)
    must be within `data.max_staleness_days` of the as-of date: older input means the export
    did not refresh, and tonight's list would call every customer a churner."""
    limits = {"transactions": cfg.data.max_staleness_days} | cfg.data.max_staleness_days_by_table
    for table, limit in sorted(limits.items()):
        if not tables.has(table) or not TABLES[table].event_time:
            continue
        newest = newest_event(tables, table)
        if newest is None:
            continue
        if (as_of - newest).days > limit:
            name = tables.files[table].name
            raise DataError(
                f"{name} ends on {newest}, {(as_of - newest).days} days before the as-of date {as_of}: the export "
                f"did not refresh (data.max_staleness_days{'_by_table.' + table if table != 'transactions' else ''}"
                f" allows {limit}). Refresh the export, or score a past date with --as-of."
            )


def check_champion_tables(tables: Tables, cfg: Config, champions) -> None:
    """Every table whose features a champion was trained with must be there tonight: scoring
    without it would feed the model zeros and blanks it never saw for every customer."""
    table_of = {f.name: stage.table for stage in STAGES for f in stage.features(cfg.features)}
    for champion in champions:
        unknown = [f for f in champion.fitted.schema.names if f not in table_of and f not in LIFETIME_FEATURES]
        if unknown:
            raise DataError(
                f"The champion {champion.name} v{champion.version} was trained with {len(unknown)} feature(s) that "
                f"this config does not build (e.g. {', '.join(unknown[:3])}): the features section changed since "
                "training (channels or windows). Retrain with `make train`, or restore the features section the "
                "champion was trained with."
            )
        needed: dict[str, list[str]] = {}
        for feature in champion.fitted.schema.names:
            table = table_of.get(feature)
            if table is not None and not tables.has(table):
                needed.setdefault(table, []).append(feature)
        if needed:
            missing = "; ".join(f"{table} ({len(names)} features, e.g. {', '.join(names[:3])})"
                                for table, names in sorted(needed.items()))
            raise DataError(
                f"The champion {champion.name} v{champion.version} was trained with table(s) that are not in "
                f"{cfg.data.path} tonight: {missing}. Restore the missing export(s), or retrain without them "
                "(`make train`) so that a model that does not need them becomes champion."
            )


def unlisted_channels(tables: Tables, cfg: Config) -> list[str]:
    """Interaction channels in the data that `features.channels` does not list: their events
    count in the all-channel features only, which a user should know rather than guess."""
    if not tables.has("interactions"):
        return []
    counts = tables.query("SELECT channel, count(*) AS events FROM interactions GROUP BY channel ORDER BY channel")
    unlisted = counts[~counts["channel"].isin(cfg.features.channels)]
    if unlisted.empty:
        return []
    listed = ", ".join(f"{row.channel} ({row.events:,} events)" for row in unlisted.itertuples())
    return [f"interactions on channel(s) not in features.channels: {listed}; they count only in the "
            "all-channel features (add them to features.channels and retrain for features of their own)"]


def check_drift_stops(cfg: Config, churn_champion) -> None:
    """`scoring.drift_stop_on` may name only inputs the champion watches (the score and its
    strongest features, stored at training): any other name could never stop a run."""
    watched = sorted(drift_reference(churn_champion.fitted))
    unknown = sorted(set(cfg.scoring.drift_stop_on) - set(watched))
    if unknown:
        raise ConfigError(
            f"scoring.drift_stop_on names {unknown}, which the champion {churn_champion.name} "
            f"v{churn_champion.version} does not watch for drift, so they could never stop a run. It watches: "
            f"{', '.join(watched) or 'nothing (logged before the drift guard)'}."
        )


def check_passthrough_names(cfg: Config) -> None:
    """A passthrough column named like a column of the list would rename the list's own column."""
    clash = sorted(set(cfg.scoring.passthrough_columns) & set(AT_RISK_COLUMNS))
    if clash:
        raise ConfigError(
            f"scoring.passthrough_columns names {clash}, which the at-risk list has already: the list's own "
            "column would be renamed. Rename that column in customers, or leave it out of passthrough_columns."
        )
