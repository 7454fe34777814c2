"""`churn init`: a starter project whose config names every key the config model has, that
a user's exports go into, and that never writes over a folder with anything in it."""

from __future__ import annotations

import pydantic
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, parse_config
from pipeline.starter import STARTER_CONFIG
from tests.conftest import tiny_world, write_world

runner = CliRunner()


def key_paths(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    """Every key of the config model, nested sections included ('scoring.csv.delimiter')."""
    paths = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            paths |= key_paths(annotation, f"{path}.")
    return paths


def written_paths(raw: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in raw.items():
        paths.add(f"{prefix}{key}")
        if isinstance(value, dict) and key not in ("by_reason", "max_staleness_days_by_table", "churn_params",
                                                   "clv_params"):  # free-form maps: their keys are the user's
            paths |= written_paths(value, f"{prefix}{key}.")
    return paths


def test_the_starter_config_names_every_key_the_config_model_has():
    raw = yaml.safe_load(STARTER_CONFIG.read_text(encoding="utf-8"))
    missing = key_paths(Config) - written_paths(raw)
    assert not missing, f"configs/starter.yaml lacks {sorted(missing)}"
    parse_config(raw, "configs/starter.yaml")  # and is a valid config as it stands
    # every key line carries a comment, except list items and the keys of a free-form map
    uncommented = [line for line in STARTER_CONFIG.read_text(encoding="utf-8").splitlines()
                   if line.startswith("  ") and not line.startswith("    ") and ":" in line and "#" not in line]
    assert uncommented == [], uncommented


def test_init_starts_a_project_that_validates_once_the_tables_are_in(tmp_path):
    project = tmp_path / "shop"
    result = runner.invoke(app, ["init", str(project)])
    assert result.exit_code == 0, result.output
    assert (project / "config.yaml").read_text() == STARTER_CONFIG.read_text()
    readme = (project / "data" / "README.txt").read_text()
    assert "customers (required)" in readme and "transactions (required)" in readme and "customer_id" in readme
    # without tables, the contract says what is missing; with them, the folder validates
    empty = runner.invoke(app, ["validate", "--config", str(project / "config.yaml")])
    assert empty.exit_code == 3 and "Required table(s) customers, transactions not found" in empty.output
    write_world(project / "data", tiny_world())
    valid = runner.invoke(app, ["validate", "--config", str(project / "config.yaml")])
    assert valid.exit_code == 0, valid.output


def test_init_never_writes_into_a_folder_that_holds_anything(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 7 and "never writes over what is there" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
