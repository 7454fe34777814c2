"""`churn init`: a starter project for a user's own data: the commented config with every
key (configs/starter.yaml) and a data folder that says which tables and columns it expects.

Written only into a new or empty folder, so nothing a user owns is ever replaced."""

from __future__ import annotations

from pathlib import Path

from pipeline.contract import TABLES
from pipeline.errors import OutputError
from pipeline.files import atomic_write_text
from pipeline.importers.mapping import builtin_sources

STARTER_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "starter.yaml"


def data_readme() -> str:
    """The data contract in words: one paragraph per table, one line per column."""
    lines = ["Put one file per table here: <table>.csv or <table>.parquet (UTF-8 CSV with a header row).",
             "customers and transactions are required; the other tables add their features when present.",
             "Or convert your systems' standard exports into them: `churn import SOURCE FILE... --out <this folder>`",
             f"(sources: {', '.join(builtin_sources())}; their mappings are in configs/sources/).", ""]
    for table in TABLES.values():
        lines.append(f"{table.name}{' (required)' if table.required else ''}: {table.description}")
        for column in table.columns:
            lines.append(f"  {column.name:<28} {column.kind:<10} {'required; ' if column.required else ''}"
                         f"{column.description}")
        lines.append("")
    return "\n".join(lines)


def write_starter(folder: Path) -> list[Path]:
    """FOLDER/config.yaml and FOLDER/data/README.txt, in a new or empty FOLDER; return them."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"Refusing to start a project in {folder}: it is not a new or empty folder, and "
                          "`churn init` never writes over what is there. Name a new folder.")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config, readme = folder / "config.yaml", folder / "data" / "README.txt"
    atomic_write_text(STARTER_CONFIG.read_text(encoding="utf-8"), config)
    atomic_write_text(data_readme(), readme)
    return [config, readme]
