"""Configuration is validated once, at load: bad keys are named by their path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Config, load_config, parse_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")))
def test_shipped_configs_load(path):
    assert isinstance(load_config(path), Config)


def test_data_option_overrides_the_data_path():
    cfg = load_config(ROOT / "configs/default.yaml", data_dir=Path("/somewhere/else"))
    assert cfg.data.path == Path("/somewhere/else")
    relative = load_config(ROOT / "configs/default.yaml", data_dir=Path("here"))
    assert relative.data.path == Path.cwd() / "here"  # a command-line path is relative to the shell


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"churn": {"horizon_dayz": 90}}, "churn.horizon_dayz: unknown key"),
        ({"scorin": {}}, "scorin: unknown key"),
        ({"churn": {"horizon_days": -5}}, "churn.horizon_days: Input should be greater than 0"),
        ({"churn": {"horizon_days": "ninety"}}, "churn.horizon_days: Input should be a valid integer"),
        ({"churn": {"definition": "vibes"}}, "churn.definition: Input should be 'inactivity' or 'subscription'"),
        ({"churn": {"horizon_days": 120, "active_lookback_days": 60}},
         "churn: active_lookback_days (60) is shorter than horizon_days (120)"),
        ({"features": {"windows": [90, 30]}}, "features: windows must be strictly increasing"),
        ({"scoring": {"tiers": {"high": 0.2, "medium": 0.4}}}, "scoring.tiers: tier threshold medium must not exceed high"),
        ({"scoring": {"csv": {"delimiter": ",", "decimal": ","}}}, "decimal separator must differ"),
        ({"training": {"cutoffs": 1}}, "training.cutoffs: Input should be greater than or equal to 2"),
    ],
)
def test_bad_values_are_rejected_with_their_key_path(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    assert message in str(error.value)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("churn: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_environment_overrides_the_tracking_uri(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert Config().tracking.resolved_uri() == "http://127.0.0.1:5999"


def test_relative_paths_belong_to_the_project_not_the_shell(tmp_path, monkeypatch):
    """Run from another folder, `churn score` used to create an empty mlflow.db there."""
    monkeypatch.chdir(tmp_path)
    cfg = load_config(ROOT / "configs/default.yaml")
    assert cfg.data.path == ROOT / "data/demo"
    assert cfg.tracking.uri == f"sqlite:///{ROOT / 'mlflow.db'}"
    assert cfg.tracking.artifact_dir == ROOT / "mlartifacts"
    assert cfg.scoring.output_dir == ROOT / "outputs/at_risk"
    assert cfg.data.quarantine_dir == ROOT / "outputs/quarantine"
    assert cfg.model.tuned_params_path == ROOT / "configs/tuned_params.yaml"


def test_a_config_outside_a_configs_folder_anchors_at_its_own_folder(tmp_path, monkeypatch):
    own = tmp_path / "mine"
    own.mkdir()
    (own / "churn.yaml").write_text("data: {path: export}\ntracking: {uri: 'sqlite:///store/mlflow.db'}\n"
                                    "scoring: {output_dir: /srv/lists}\n")
    monkeypatch.chdir(ROOT)
    cfg = load_config(own / "churn.yaml")
    assert cfg.data.path == own / "export"
    assert cfg.tracking.uri == f"sqlite:///{own / 'store/mlflow.db'}"
    assert cfg.scoring.output_dir == Path("/srv/lists")  # absolute paths stay as they are
