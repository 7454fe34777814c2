"""Report periods: whole calendar months or quarters, half-open [start, end) like the
feature and label windows, and the choice of the periods a requested range reports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import DataError, PipelineError

PeriodKind = Literal["month", "quarter"]


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month `months` after the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def period_floor(day: dt.date, kind: PeriodKind) -> dt.date:
    month = day.month if kind == "month" else (day.month - 1) // 3 * 3 + 1
    return dt.date(day.year, month, 1)


def period_label(start: dt.date, kind: PeriodKind) -> str:
    return f"{start:%Y-%m}" if kind == "month" else f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def calendar_periods(start: dt.date, end: dt.date, kind: PeriodKind) -> list[Period]:
    """The whole calendar months or quarters inside [start, end), oldest first. A period
    cut by either edge is left out: its KPIs would not compare with the others."""
    step = 1 if kind == "month" else 3
    first = period_floor(start, kind)
    if first < start:
        first = add_months(first, step)
    periods = []
    while (following := add_months(first, step)) <= end:
        periods.append(Period(period_label(first, kind), first, following))
        first = following
    return periods


def choose_periods(start: dt.date, end: dt.date, kind: PeriodKind, observed_until: dt.date
                   ) -> tuple[list[Period], list[str]]:
    """The periods to report for the range [start, end) on data observed until
    `observed_until` (exclusive), with notes for the reader on what was left out."""
    if kind not in ("month", "quarter"):
        raise PipelineError(f"The report period must be 'month' or 'quarter', not {kind!r}.")
    if start >= end:
        raise PipelineError(f"The report range is empty: start {start} is not before end {end}.")
    periods = calendar_periods(start, end, kind)
    if not periods:
        raise PipelineError(
            f"No whole calendar {kind} lies inside [{start}, {end}). Widen the range, e.g. start on "
            f"the first day of a {kind} and end on the first day of a later one."
        )
    notes = []
    if periods[0].start > start or periods[-1].end < end:
        notes.append(f"Only whole calendar {kind}s are reported: {periods[0].start} to {periods[-1].end} "
                     f"of the requested {start} to {end}.")
    after_data = [p for p in periods if p.start >= observed_until]
    if len(after_data) == len(periods):
        raise DataError(f"The data ends on {observed_until - dt.timedelta(days=1)}, before the report range "
                        f"{start} to {end} begins. Choose an earlier range.")
    if after_data:
        notes.append(f"{len(after_data)} {kind}(s) from {after_data[0].label} on start after the data ends "
                     f"({observed_until - dt.timedelta(days=1)}) and are left out.")
    return [p for p in periods if p.start < observed_until], notes
