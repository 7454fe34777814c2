"""Before any work, tonight's run checks that the input is fresh, that every table the
champions learned from is there and that the config fits the data."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from pipeline.at_risk.preflight import unlisted_channels
from pipeline.config import load_config
from pipeline.errors import ConfigError, DataError
from pipeline.score import run_scoring
from pipeline.tables import load_tables
from tests.conftest import RUN_AT, tiny_world, write_config, write_world


def setup(demo_run, folder, data=None, **sections):
    config = write_config(folder, data={"path": str(data or demo_run / "data")},
                          tracking={"uri": f"sqlite:///{demo_run / 'mlflow.db'}"},
                          scoring={"output_dir": str(folder / "out"), **sections.pop("scoring", {})}, **sections)
    cfg = load_config(config)
    return cfg, load_tables(cfg.data.path, dt.datetime(2026, 3, 1), None)


def test_stale_input_stops_the_run_with_the_dates(demo_run, tmp_path):
    cfg, tables = setup(demo_run, tmp_path)
    with pytest.raises(DataError, match=r"transactions\.parquet ends on 2025-12-31, 34 days before the as-of date "
                                        r"2026-02-03: the export did not refresh"):
        run_scoring(tables, cfg, dt.date(2026, 2, 3))
    assert not (tmp_path / "out").exists()


def test_a_table_limit_of_its_own_checks_that_table_too(demo_run, tmp_path):
    cfg, tables = setup(demo_run, tmp_path, data=None)
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"max_staleness_days": 60,
                                                                     "max_staleness_days_by_table": {"surveys": 0}})})
    newest = tables.con.execute("SELECT max(responded_at) FROM surveys").fetchall()[0][0].date()
    with pytest.raises(DataError, match=rf"surveys\.parquet ends on {newest}"):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))


def test_a_table_the_champion_needs_is_named_when_it_is_missing(demo_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_run / "data", data)
    (data / "support_tickets.parquet").unlink()
    cfg, tables = setup(demo_run, tmp_path, data=data)
    with pytest.raises(DataError, match=r"trained with table\(s\) that are not in .* tonight: support_tickets \("):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))
    assert not (tmp_path / "out").exists()


def test_features_the_config_no_longer_builds_are_named(demo_run, tmp_path):
    cfg, tables = setup(demo_run, tmp_path, features={"channels": ["email", "web"]})
    with pytest.raises(DataError, match=r"feature\(s\) that this config does not build .*changed since training"):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))


def test_a_passthrough_column_customers_lacks_stops_before_scoring(demo_run, tmp_path, caplog):
    cfg, tables = setup(demo_run, tmp_path, scoring={"passthrough_columns": ["loyalty_tier"]})
    with caplog.at_level("INFO"), pytest.raises(ConfigError, match="passthrough_columns names"):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))
    assert "score active customers" not in caplog.text  # nothing was scored first


def test_channels_the_config_does_not_list_are_a_warning(tmp_path):
    write_world(tmp_path / "data", tiny_world())
    cfg = load_config(write_config(tmp_path, features={"channels": ["email"]}))
    tables = load_tables(cfg.data.path, RUN_AT, None)
    warnings = unlisted_channels(tables, cfg)
    assert len(warnings) == 1 and "app (1 events), web (2 events)" in warnings[0]
    cfg = load_config(write_config(tmp_path))
    assert unlisted_channels(tables, cfg) == []


def test_drift_warns_in_words_and_stops_only_where_asked():
    from pipeline.at_risk.scores import check_drift
    from pipeline.config import parse_config

    drift = {"churn_probability": 0.7, "days_since_last_purchase": 0.3, "revenue_90d": 0.02}
    warnings = check_drift(drift, parse_config({}))
    assert warnings == [
        "churn_probability (the score itself) has shifted since training: population stability index 0.70 "
        "(above 0.1)",
        "days_since_last_purchase (Days since the last purchase) has shifted since training: population "
        "stability index 0.30 (above 0.1)",
    ]
    stopping = parse_config({"scoring": {"drift_stop_on": ["churn_probability", "revenue_90d"]}})
    with pytest.raises(DataError) as failure:
        check_drift(drift, stopping)
    message = str(failure.value)
    assert "\n  churn_probability (the score itself): population stability index 0.70 (above 0.5)\n" in message
    assert "revenue_90d" not in message and "{" not in message  # only what stopped it, and no Python dict


def test_a_drift_stop_on_an_input_the_champion_does_not_watch_is_refused(demo_run, tmp_path):
    cfg, tables = setup(demo_run, tmp_path, scoring={"drift_stop_on": ["revenue_zzz"]})
    with pytest.raises(ConfigError, match=r"drift_stop_on names \['revenue_zzz'\].* It watches: .*churn_probability"):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))


def test_a_passthrough_column_named_like_a_list_column_is_refused(demo_run, tmp_path):
    cfg, tables = setup(demo_run, tmp_path, scoring={"passthrough_columns": ["email", "segment"]})
    with pytest.raises(ConfigError, match=r"passthrough_columns names \['segment'\], which the at-risk list has"):
        run_scoring(tables, cfg, dt.date(2026, 1, 1))


def test_a_staleness_limit_for_a_table_without_event_times_is_refused():
    from pipeline.config import parse_config

    with pytest.raises(ConfigError, match=r"max_staleness_days_by_table names \['customers', 'interaction'\]"):
        parse_config({"data": {"max_staleness_days_by_table": {"interaction": 1, "customers": 1}}})


@pytest.mark.parametrize(("crm", "named"), [({"email_column": "e_mail"}, r"scoring\.crm\.email_column \('e_mail'\)"),
                                            ({"record_id_column": "sf_id"}, r"scoring\.crm\.record_id_column \('sf_id'\)")])
def test_crm_exports_without_the_matching_column_in_customers_stop_before_scoring(demo_run, tmp_path, caplog, crm,
                                                                                 named):
    cfg, tables = setup(demo_run, tmp_path, scoring={"exports": ["hubspot", "salesforce"], "crm": crm})
    with caplog.at_level("INFO"), pytest.raises(ConfigError, match=named) as refused:
        run_scoring(tables, cfg, dt.date(2026, 1, 1))
    message = str(refused.value)
    assert "\n" not in message and "scoring.exports writes import files for hubspot, salesforce" in message
    assert "the customers table has no such column" in message and "'email'" in message  # what it has instead
    assert "score active customers" not in caplog.text and not (tmp_path / "out").exists()
