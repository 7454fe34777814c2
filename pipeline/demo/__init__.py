"""The demo world: a synthetic retailer with planted churn, and the hidden truth behind it.

`pipeline.demo.world` generates a world into a folder (the contract tables, plus the truth in
its `truth/` subfolder); `pipeline.demo.truth` reads that truth back, e.g. the oracle's true
churn probabilities. This module itself stays free of heavy imports: production code imports
it to ask whether a data folder is a demo world.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_demo_world"]


def is_demo_world(data_dir: Path) -> bool:
    """True when data_dir was written by the generator: only a generated world has a truth
    folder (real data never does)."""
    return (Path(data_dir) / "truth").is_dir()
