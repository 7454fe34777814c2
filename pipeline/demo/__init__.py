"""The demo world: a synthetic retailer with planted churn, and the hidden truth behind it.

`pipeline.demo.world` generates a world into a folder (the contract tables, plus the truth in
its `truth/` subfolder, plus the marker file `.churn-demo-world`); `pipeline.demo.truth`
reads that truth back, e.g. the oracle's true churn probabilities. This module itself stays
free of heavy imports: production code imports it to ask whether a data folder is a demo
world. It also writes the marker and checks a folder before the generator replaces it.

The marker is what makes a folder a demo world, for the pipeline (only then does training
read `truth/`) and for the generator (only a folder that holds nothing but an earlier world
may be replaced). It is JSON: the generator's name, the run's arguments (seed, customers,
format, end date, years) and the size of every file the generator wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import OutputError

__all__ = ["DEMO_GENERATOR", "DEMO_MARKER", "check_world_folder", "is_demo_world", "read_marker", "write_marker"]

DEMO_MARKER = ".churn-demo-world"
DEMO_GENERATOR = "churn-pipeline demo world"


def read_marker(data_dir: Path) -> dict | None:
    """The demo-world marker of data_dir, or None when data_dir holds no valid one."""
    marker = Path(data_dir) / DEMO_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        facts = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(facts, dict) or facts.get("generator") != DEMO_GENERATOR or not isinstance(
            facts.get("files"), dict):
        return None
    return facts


def is_demo_world(data_dir: Path) -> bool:
    """True when data_dir was written by the generator, as its marker file says. A `truth/`
    folder alone proves nothing: real data may have one of its own."""
    return read_marker(data_dir) is not None


def write_marker(folder: Path, run: dict) -> None:
    """The marker that makes `folder` a demo world: the run's arguments and the size of every
    file written (so that a file added or replaced later is seen as not the generator's)."""
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    facts = {"generator": DEMO_GENERATOR, "seed": run["seed"], "customers": run["n_customers"],
             "format": run["format"], "end_date": run["end_date"], "years": run["years"], "files": files}
    (folder / DEMO_MARKER).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def check_world_folder(folder: Path, replace: bool) -> None:
    """Refuse (OutputError) to write a world into a folder that holds anything the generator
    did not write, or an earlier world unless `replace`. A missing or empty folder is fine."""
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    marker = read_marker(folder)
    recorded = {} if marker is None else marker["files"]
    parents = {parent.as_posix() for name in recorded for parent in Path(name).parents}
    foreign = []
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        kept = (path.is_dir() and not path.is_symlink() and name in parents) or (
            name == DEMO_MARKER and marker is not None) or (
            path.is_file() and not path.is_symlink() and recorded.get(name) == path.stat().st_size)
        if not kept:
            foreign.append(name)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"Refusing to write a demo world into {folder}: it holds files the generator did not write ({shown}). "
            "A world replaces its folder as a whole, so it is never written over other files, with or without "
            "--force, and nothing there was touched. Give `churn generate --out` (or data.path, for `churn demo`) a "
            "new or empty folder, or move those files away.")
    if not replace:
        raise OutputError(
            f"{folder} holds an earlier demo world (seed {marker.get('seed')}, {marker.get('customers')} customers), "
            "left as it is. Pass --force to replace it, or give --out another folder.")
