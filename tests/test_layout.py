"""The shape of the code: one room per job, imports that run one way, modules one can read.

Parsed from the source, not imported, so that a violation is named with its file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "features", "models")
MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
MAX_LINES = 450
# Entry points and products: what features/ and models/ must never reach for.
DOWNSTREAM = ("pipeline.cli", "pipeline.train", "pipeline.tune", "pipeline.score", "pipeline.tracking",
              "pipeline.at_risk", "pipeline.reporting", "pipeline.demo")


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", MODULES, ids=name)
def test_every_module_says_what_it_holds_and_reads_in_one_sitting(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{name(path)} has no module docstring"
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES, f"{name(path)} is over {MAX_LINES} lines"


def test_pipeline_keeps_the_front_door_edges_and_entry_points_at_its_top_level():
    top = sorted(p.stem for p in (ROOT / "pipeline").glob("*.py") if p.stem != "__init__")
    assert len(top) <= 12, top
    assert {"cli", "config", "train", "tune", "score"} <= set(top)
    assert (ROOT / "pipeline" / "tracking" / "__init__.py").is_file()  # MLflow's room


def test_features_and_models_never_import_entry_points_or_products():
    offenders = {name(p): sorted(i for i in imports_of(p) if i.startswith(DOWNSTREAM))
                 for p in MODULES if p.parts[len(ROOT.parts)] in ("features", "models")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_models_are_free_of_mlflow_and_of_the_pipeline():
    offenders = {name(p): sorted(i for i in imports_of(p) if i.split(".")[0] in ("mlflow", "pipeline"))
                 for p in (ROOT / "models").rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_mlflow_lives_in_the_tracking_package_only():
    users = sorted(name(p) for p in MODULES if any(i.split(".")[0] == "mlflow" for i in imports_of(p)))
    assert users and all(user.startswith("pipeline/tracking/") for user in users), users


def test_the_demo_world_is_not_imported_by_production_code_except_to_read_its_truth():
    allowed = {"pipeline.demo", "pipeline.demo.is_demo_world", "pipeline.demo.truth", "pipeline.demo.truth.oracle_for"}
    offenders = {}
    for path in MODULES:
        if "demo" in path.parts or path.name == "cli.py":  # the CLI's generate and demo commands write worlds
            continue
        used = {i for i in imports_of(path) if i.startswith("pipeline.demo")} - allowed
        if used:
            offenders[name(path)] = sorted(used)
    assert offenders == {}


def loaded_by(module: str) -> set[str]:
    """Every project or MLflow module that importing `module` loads, in a fresh interpreter:
    what a direct-import check misses (a chain through a third module)."""
    import json
    import subprocess
    import sys

    code = (f"import json, sys; import {module}; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('pipeline', 'features', "
            "'models', 'mlflow'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return set(json.loads(done.stdout))


def test_models_load_neither_the_pipeline_nor_mlflow_even_indirectly():
    modules = sorted(f"models.{p.stem}" for p in (ROOT / "models").glob("*.py") if p.stem != "__init__")
    loaded = loaded_by(", ".join(modules).replace(", ", "; import "))
    assert sorted(m for m in loaded if m.split(".")[0] in ("pipeline", "mlflow")) == []


def test_features_never_load_entry_points_products_or_mlflow_even_indirectly():
    modules = sorted(f"features.{p.stem}" for p in (ROOT / "features").glob("*.py") if p.stem != "__init__")
    loaded = loaded_by("; import ".join(modules))
    # The config, contract, engine and errors are the shared edges. The config validates tier
    # names against the tier registry, a list of names and colours that imports no product code.
    registries = {"pipeline.at_risk", "pipeline.at_risk.tiers"}
    downstream = sorted(m for m in loaded - registries if m.startswith(DOWNSTREAM) or m.split(".")[0] == "mlflow")
    assert downstream == []
