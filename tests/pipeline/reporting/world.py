"""The small world the KPI report tests compute every value on by hand.

It covers January to April 2025 by month, with inactivity churn with a 60-day lookback and a
30-day horizon; the data ends on 2025-04-20 (a survey answer), so April is partial and its
churn window is not over:

    a  buys 2024-12-10 (100), 2025-01-15 (50), 03-05 (30); subscribes 30/month until 02-15,
       restarts at 20/month on 03-10 after a gap (spanning the March 1 boundary)
    b  buys 01-20 (40), refunds 01-25 (-10): the January cohort, a cohort of one;
       subscribes 30 from 01-05, upgrades to 50 on 03-20, downgrades to 40 on 04-15
    c  buys 03-10 (60), 03-12 (25); has an open complaint from 03-11
    d  buys 2024-11-15 (20) and never again (churned in January)
    e  buys 03-15 (80), 04-10 (20); subscribed at 10 for February only (from 02-01 00:00
       to 03-01 00:00, exactly on the boundaries)
    f  never buys

February has no new customer and no survey answer; nobody's first purchase is in April."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import ChurnConfig, Config
from pipeline.tables import Tables, load_tables
from tests.conftest import RUN_AT, write_world

START, END = dt.date(2025, 1, 1), dt.date(2025, 5, 1)
CHURN = ChurnConfig(definition="inactivity", horizon_days=30, active_lookback_days=60)
CFG = Config(churn=CHURN)
NAN = np.nan


def report_world() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame({
        "customer_id": ["a", "b", "c", "d", "e", "f"],
        "signup_at": ["2024-12-01", "2025-01-05", "2025-03-01", "2024-11-01", "2025-02-01", "2025-02-01"],
    })
    transactions = pd.DataFrame([
        ("t1", "a", "2024-12-10 10:00", 100.0), ("t2", "a", "2025-01-15 10:00", 50.0),
        ("t3", "b", "2025-01-20 10:00", 40.0), ("t4", "b", "2025-01-25 10:00", -10.0),
        ("t5", "a", "2025-03-05 10:00", 30.0), ("t6", "c", "2025-03-10 10:00", 60.0),
        ("t7", "c", "2025-03-12 10:00", 25.0), ("t8", "e", "2025-03-15 10:00", 80.0),
        ("t9", "e", "2025-04-10 10:00", 20.0), ("t10", "d", "2024-11-15 10:00", 20.0),
    ], columns=["transaction_id", "customer_id", "purchased_at", "amount"])
    surveys = pd.DataFrame([
        ("a", "2025-01-05 10:00", 10), ("b", "2025-01-22 10:00", 3), ("d", "2025-01-28 10:00", 9),
        ("a", "2025-03-20 10:00", 9), ("e", "2025-03-25 10:00", 0), ("c", "2025-03-28 10:00", 5),
        ("c", "2025-04-20 10:00", 7),
    ], columns=["customer_id", "responded_at", "nps_score"])
    support_tickets = pd.DataFrame([
        ("k1", "b", "2025-01-21 09:00", "2025-02-10 09:00", "complaint", "2", "6"),
        ("k2", "a", "2025-01-10 09:00", "2025-01-12 09:00", "billing", "5", "2"),
        ("k3", "c", "2025-03-11 09:00", None, "complaint", None, None),
        ("k4", "e", "2025-03-16 09:00", "2025-03-18 09:00", "delivery", "4", None),
        ("k5", "a", "2025-02-20 09:00", "2025-03-02 09:00", "complaint", "3", "4"),
    ], columns=["ticket_id", "customer_id", "opened_at", "resolved_at", "category", "satisfaction", "effort_score"])
    subscriptions = pd.DataFrame([
        ("s1", "a", "plus", "2024-12-01", "2025-02-15", 30.0),
        ("s2", "a", "basic", "2025-03-10", None, 20.0),
        ("s3", "b", "plus", "2025-01-05", "2025-03-20", 30.0),
        ("s4", "b", "premium", "2025-03-20", "2025-04-15", 50.0),
        ("s5", "e", "basic", "2025-02-01 00:00", "2025-03-01 00:00", 10.0),
        ("s6", "b", "plus", "2025-04-15", None, 40.0),
    ], columns=["subscription_id", "customer_id", "plan", "started_at", "ended_at", "monthly_fee"])
    return {"customers": customers, "transactions": transactions, "surveys": surveys,
            "support_tickets": support_tickets, "subscriptions": subscriptions}


def load(folder: Path, world: dict[str, pd.DataFrame]) -> Tables:
    return load_tables(write_world(folder, world), RUN_AT, None)


def assert_column(kpis: pd.DataFrame, column: str, expected: list) -> None:
    actual = kpis[column].astype(float).to_numpy()
    np.testing.assert_allclose(actual, np.array(expected, dtype=float), rtol=1e-9, equal_nan=True,
                               err_msg=column)
