"""Join every feature stage onto the customer spine: the model-ready frame.

Stages run in catalogue order (features/catalog.py); a stage whose table is absent is
skipped and says so. Large spines are built in batches of whole customers
(`features.batch_rows`; their progress is logged), each written into one preallocated
column per feature, so that neither the engine nor Python holds more than one batch of
intermediate results. While the columns are filled, the engine keeps to its budget less
their size (Tables.memory_shared_with): the two share `data.engine_memory_gb`."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from features.catalog import STAGES
from features.feature import FEATURE_DTYPE, KEYS
from pipeline.config import FeaturesConfig
from pipeline.logs import progress
from pipeline.tables import Tables

log = logging.getLogger(__name__)


def build_features(tables: Tables, spine: pd.DataFrame, cfg: FeaturesConfig) -> pd.DataFrame:
    """One row per spine row (customer_id, cutoff_date), one column per feature of every
    stage whose table is present. Numeric features are FEATURE_DTYPE (float32) with NaN for
    missing; categorical features stay plain text (missing: NaN), as a client of the logged
    model would send them; the model turns them into categories."""
    frame = spine[KEYS]
    if not pd.MultiIndex.from_frame(frame).is_monotonic_increasing:  # in order, the keys are shared, not copied
        frame = frame.sort_values(KEYS, kind="stable")
    frame = frame.reset_index(drop=True)
    stages = []
    for stage in STAGES:
        if tables.has(stage.table):
            stages.append(stage)
        else:
            log.info("stage %-16s skipped: no %s table", stage.name, stage.table)
    features = [feature for stage in stages for feature in stage.features(cfg)]
    numeric_names = [f.name for f in features if f.kind == "numeric"]
    text: dict[str, list[pd.Series]] = {f.name: [] for f in features if f.kind == "categorical"}
    seconds = dict.fromkeys((stage.name for stage in stages), 0.0)
    batches = list(customer_batches(frame, cfg.batch_rows))
    columns_gb = len(frame) * len(numeric_names) * np.dtype(FEATURE_DTYPE).itemsize / 2**30
    # the engine gives up its share first: the pages it still holds (the tables just stored,
    # the spine's query) and the new columns would otherwise be in memory together
    with tables.memory_shared_with(columns_gb):
        numeric = preallocated(numeric_names, len(frame))
        for start, stop in progress(batches, len(batches), "features", "batches", rows=lambda b: b[1] - b[0]):
            rows = frame.iloc[start:stop]
            for stage in stages:
                started = time.perf_counter()
                part = stage.build(tables, rows, cfg)
                for name in part.columns.drop(KEYS):
                    if name in numeric:
                        numeric[name][start:stop] = pd.to_numeric(part[name]).to_numpy(dtype=FEATURE_DTYPE,
                                                                                        na_value=np.nan)
                    else:
                        text[name].append(part[name].astype("str"))
                seconds[stage.name] += time.perf_counter() - started
    for stage in stages:
        log.info("stage %-16s %3d features for %s rows in %.1fs", stage.name, len(stage.catalog(cfg)),
                 f"{len(frame):,}", seconds[stage.name])
    columns = {f.name: numeric[f.name] if f.name in numeric else _joined(text[f.name]) for f in features}
    # the feature arrays become the frame's columns as they are: no copy of the whole frame
    return pd.concat([frame, pd.DataFrame(columns, copy=False)], axis=1)


def preallocated(names: list[str], rows: int) -> dict[str, np.ndarray]:
    """One FEATURE_DTYPE column of `rows` NaN (missing) per numeric feature, filled batch by batch."""
    return {name: np.full(rows, np.nan, dtype=FEATURE_DTYPE) for name in names}


def _joined(parts: list[pd.Series]) -> pd.Series:
    """A text feature's batches as one column (an empty spine has no batches)."""
    return pd.concat(parts, ignore_index=True) if parts else pd.Series([], dtype="str")


def customer_batches(frame: pd.DataFrame, batch_rows: int) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges of `frame` (sorted by customer) of at most about `batch_rows`
    rows that never split a customer's cutoffs (a customer with more rows gets a batch alone)."""
    customers = frame["customer_id"].to_numpy()
    start = 0
    while start < len(frame):
        stop = min(start + batch_rows, len(frame))
        while 0 < stop < len(frame) and customers[stop] == customers[stop - 1]:
            stop -= 1  # back to the first row of the customer the batch would split
        if stop <= start:  # one customer with more than batch_rows cutoffs
            stop = start + 1
            while stop < len(frame) and customers[stop] == customers[start]:
                stop += 1
        yield start, stop
        start = stop


def held_gb(frame: pd.DataFrame) -> float:
    """The memory a finished frame's columns hold, for `Tables.memory_shared_with`."""
    return frame.memory_usage(index=False).sum() / 2**30
