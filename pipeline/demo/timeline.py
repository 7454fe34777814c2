"""Time in the demo world: epoch seconds, the "never" marker, and conversions to dates and
Arrow timestamp columns.

The simulation keeps every moment as int64 epoch seconds (vectorised arithmetic, no
datetime objects per row); these helpers are the only places where that meets dates and
columns.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pyarrow as pa

DAY = 86_400
WEEK = 7 * DAY
NO_TIME = np.iinfo(np.int64).min  # "never" in arrays of epoch seconds


def epoch_seconds(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY


def date_of(seconds: int) -> date:
    return date(1970, 1, 1) + timedelta(days=seconds // DAY)


def timestamps(seconds: np.ndarray) -> pa.Array:
    """Epoch seconds as a timestamp[us] column; NO_TIME becomes null."""
    missing = seconds == NO_TIME
    micros = np.where(missing, 0, seconds) * 1_000_000
    return pa.array(micros, type=pa.timestamp("us"), mask=missing if missing.any() else None)


def seconds_of(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp[us] column as epoch seconds; null becomes NO_TIME."""
    micros = column.cast(pa.int64()).fill_null(NO_TIME).to_numpy()
    return np.where(micros == NO_TIME, NO_TIME, micros // 1_000_000)
