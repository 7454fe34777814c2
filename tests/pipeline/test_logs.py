"""Long steps say how far they got: batches done of total, rows per second and the time left,
at every tenth of the way, read off a fake clock; and the real batched loops use it."""

from __future__ import annotations

import io
import logging
import re
import sys

import pandas as pd
import pytest

from pipeline.logs import duration, progress


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "churn"]


def test_every_tenth_of_the_way_says_done_of_total_rows_per_second_and_time_left(caplog, not_a_terminal):
    clock, sizes = FakeClock(), [1_000] * 19 + [500]
    caplog.set_level(logging.INFO, logger="churn")
    for size in progress(sizes, len(sizes), "features", "batches", rows=lambda rows: rows, clock=clock):
        clock.now += size / 250  # 250 rows a second
    logged = lines(caplog)
    assert len(logged) == 10  # every second batch of 20, the last one included
    assert logged[0] == "features: 2/20 batches done, 250 rows/s, about 1m12s left"
    assert logged[4] == "features: 10/20 batches done, 250 rows/s, about 40s left"
    assert logged[-2] == "features: 18/20 batches done, 250 rows/s, about 8s left"
    assert logged[-1] == "features: 20/20 batches done, 250 rows/s, took 1m18s"


def test_without_rows_the_items_themselves_are_counted(caplog, not_a_terminal):
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="churn")
    for _ in progress(range(4), 4, "churn backtest, LightGBM", "fits", clock=clock):
        clock.now += 30
    assert lines(caplog) == ["churn backtest, LightGBM: 1/4 fits done, 0.033 fits/s, about 1m30s left",
                             "churn backtest, LightGBM: 2/4 fits done, 0.033 fits/s, about 1m00s left",
                             "churn backtest, LightGBM: 3/4 fits done, 0.033 fits/s, about 30s left",
                             "churn backtest, LightGBM: 4/4 fits done, 0.033 fits/s, took 2m00s"]


def test_a_step_of_one_item_leaves_its_start_and_end_to_the_stage(caplog, not_a_terminal):
    caplog.set_level(logging.INFO, logger="churn")
    assert list(progress(["only"], 1, "features", "batches")) == ["only"]
    assert lines(caplog) == []


def test_a_terminal_gets_a_bar_with_the_same_figures_and_the_log_nothing(caplog, monkeypatch):
    terminal = io.StringIO()
    terminal.isatty = lambda: True
    monkeypatch.setattr(sys, "stderr", terminal)
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="churn")
    for _ in progress(range(3), 3, "simulating", "weeks", clock=clock):
        clock.now += 2
    drawn = terminal.getvalue().split("\r")
    assert drawn[1].startswith("simulating [##########....................] 1/3 weeks done, 0.5 weeks/s, about 4s left")
    assert drawn[-1].startswith("simulating [##############################] 3/3 weeks done, 0.5 weeks/s, took 6s")
    assert lines(caplog) == []


@pytest.mark.parametrize(("seconds", "said"), [(0.4, "0s"), (59.4, "59s"), (59.6, "1m00s"), (185, "3m05s"),
                                               (3_725, "1h02m")])
def test_durations_read_as_a_person_says_them(seconds, said):
    assert duration(seconds) == said


def test_feature_batches_log_their_progress(caplog, tiny_dir, not_a_terminal):
    from features.frame import build_features
    from pipeline.config import FeaturesConfig
    from pipeline.tables import load_tables
    from tests.conftest import RUN_AT

    tables = load_tables(tiny_dir, RUN_AT, None)
    spine = pd.DataFrame({"customer_id": ["c1", "c1", "c2", "c3"],
                          "cutoff_date": pd.to_datetime(["2025-06-01", "2025-09-01", "2025-09-01", "2025-09-01"])})
    caplog.set_level(logging.INFO, logger="churn")
    # c1's two rows, then c2 and c3 (below the config's least batch, which bounds real runs)
    build_features(tables, spine, FeaturesConfig().model_copy(update={"batch_rows": 2}))
    logged = [line for line in lines(caplog) if line.startswith("features: ")]
    assert [line.split(",")[0] for line in logged] == ["features: 1/2 batches done", "features: 2/2 batches done"]
    assert re.fullmatch(r"features: 2/2 batches done, [\d,.]+ rows/s, took \d+s", logged[-1])


def test_the_backtest_reports_every_lightgbm_fit(caplog, not_a_terminal):
    from models.forward.backtest import backtest
    from pipeline.logs import progress as logged_progress
    from tests.models.forward.test_backtest import FEATURES, linear, world

    caplog.set_level(logging.INFO, logger="churn")
    folds = world(linear)
    backtest("churn", folds, FEATURES, seed=1, tolerance=0.002, progress=logged_progress)
    fits = [line for line in lines(caplog) if line.startswith("churn backtest, LightGBM: ")]
    total = 3 * len(folds)  # the complexity grid on every fold
    assert [line.split(" fits done")[0] for line in fits] == [
        f"churn backtest, LightGBM: {k}/{total}" for k in range(1, total + 1)]
    # the rate counts each fit's training rows
    assert all(re.search(r" fits done, [1-9][\d,]* rows/s, (about \d+s left|took \d+s)$", line) for line in fits)
