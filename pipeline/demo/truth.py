"""The demo world's truth folder: what the generator writes into `truth/`, and what reads it
back, above all the oracle's true churn probability.

The folder holds customers.parquet (one row per customer: churn and reactivation moments,
latent traits), snapshots.parquet (hazard and purchase rate of every live customer, each
month) and world.json (the week grid and the run's arguments). No pipeline stage reads it;
training compares its models with the oracle on a demo world. Production code imports this
module, so it must not import the generator (`pipeline.demo.world`).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.demo.latent import REACTIVATION_WEEKLY, LatentWorld, Snapshot, WeekGrid
from pipeline.demo.timeline import DAY, NO_TIME, WEEK, epoch_seconds, seconds_of, timestamps

# --- writing -------------------------------------------------------------------------------


def customers_table(latent: LatentWorld, customer_ids: pa.Array) -> pa.Table:
    """truth/customers: one row per customer (row = customer_index), its churn history and
    latent traits."""
    t = latent.traits
    return pa.table({
        "customer_index": pa.array(np.arange(len(t.signup), dtype=np.int32)),
        "customer_id": customer_ids,
        "signup_at": timestamps(t.signup),
        "churned_at": timestamps(latent.churned_at),
        "reactivated_at": timestamps(latent.reactivated_at),
        "churned_again_at": timestamps(latent.churned_again_at),
        "is_loyalty_member": t.is_loyalty_member,
        "is_discount_dependent": t.is_discount_dependent,
        "base_weekly_purchase_rate": t.base_purchase_rate.astype(np.float32),
        "weekly_interaction_rate": t.interaction_rate.astype(np.float32),
        "ticket_propensity": t.ticket_propensity.astype(np.float32),
        "satisfaction": t.satisfaction.astype(np.float32),
        "initial_engagement": t.initial_engagement.astype(np.float32),
        "engagement_drift": t.engagement_drift.astype(np.float32),
        "final_engagement": latent.engagement.astype(np.float32),
        "initial_weekly_hazard": latent.initial_hazard,
        "initial_weekly_purchase_rate": latent.initial_purchase_rate,
    })


SNAPSHOT_SCHEMA = pa.schema([
    ("snapshot_date", pa.date32()),
    ("customer_index", pa.int32()),
    ("weekly_hazard", pa.float32()),  # chance of churning at the next week boundary
    ("weekly_purchase_rate", pa.float32()),  # expected purchases per week, before seasonality
])


def snapshot_table(snapshot: Snapshot) -> pa.Table:
    """One month's rows of truth/snapshots."""
    n = len(snapshot.customers)
    return pa.table({
        "snapshot_date": pa.array(np.full(n, np.datetime64(snapshot.day, "D"))),
        "customer_index": snapshot.customers.astype(np.int32),
        "weekly_hazard": snapshot.weekly_hazard.astype(np.float32),
        "weekly_purchase_rate": snapshot.weekly_purchase_rate.astype(np.float32),
    }, schema=SNAPSHOT_SCHEMA)


def write_world_facts(truth_dir: Path, grid: WeekGrid, **facts: object) -> None:
    """truth/world.json: the week grid the oracle needs, plus the arguments of the run."""
    facts = {"week_grid_end": grid.end, "n_weeks": grid.n_weeks, **facts}
    (truth_dir / "world.json").write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")


# --- reading -------------------------------------------------------------------------------


def oracle_churn_probability(truth_dir: Path, as_of: date, horizon_days: int) -> pd.DataFrame:
    """For every customer who signed up before as_of, the true probability (given the
    world's latent state) of making no purchase in [as_of, as_of + horizon_days).

    Uses the latest snapshot on or before as_of (taken at the start of the week holding a
    month's first day) and freezes each customer's hazard and purchase rate from there:
    every week boundary the customer churns with the hazard, and otherwise buys at the
    purchase rate (times the season) for the part of the week inside the window. Customers
    who signed up after the snapshot start from their state at signup. Customers churned at
    the snapshot only buy again by coming back (once, at REACTIVATION_WEEKLY a week).
    """
    truth_dir = Path(truth_dir)
    facts = json.loads((truth_dir / "world.json").read_text())
    grid = WeekGrid(facts["week_grid_end"], facts["n_weeks"])
    customers = pq.read_table(truth_dir / "customers.parquet", columns=[  # row = customer_index
        "customer_id", "signup_at", "reactivated_at", "initial_weekly_hazard",
        "initial_weekly_purchase_rate"])
    window_start = epoch_seconds(as_of)
    window_end = window_start + horizon_days * DAY
    signup = seconds_of(customers["signup_at"])
    known = np.flatnonzero(signup < window_start)
    signup = signup[known]

    taken = [(week, day) for week, day in grid.month_firsts().items() if day <= as_of]
    snap_week, snap_day = max(taken) if taken else (-1, None)
    snapshot = pq.read_table(truth_dir / "snapshots.parquet",
                             filters=[("snapshot_date", "=", snap_day or date.min)])
    hazard = customers["initial_weekly_hazard"].to_numpy()[known].astype(np.float64)
    rate = customers["initial_weekly_purchase_rate"].to_numpy()[known].astype(np.float64)
    start_week = grid.week_of(signup)
    in_snapshot = np.zeros(len(customers), bool)
    snapped = snapshot["customer_index"].to_numpy()
    in_snapshot[snapped] = True
    position = np.full(len(customers), -1)
    position[known] = np.arange(len(known))
    at = position[snapped]
    keep = at >= 0
    hazard[at[keep]] = snapshot["weekly_hazard"].to_numpy()[keep]
    rate[at[keep]] = snapshot["weekly_purchase_rate"].to_numpy()[keep]
    start_week[at[keep]] = snap_week
    churned = ~in_snapshot[known] & (start_week <= snap_week)

    alive_quiet = np.ones(len(known))  # alive, and no purchase in the window so far
    gone_quiet = np.zeros(len(known))  # churned, and no purchase in the window before that
    first_week = int(start_week.min()) if len(known) else snap_week
    for week in range(first_week, int(grid.week_of(window_end - 1)) + 1):
        week_start, week_end = int(grid.start(week)), int(grid.start(week + 1))
        at_boundary = start_week < week
        gone_quiet += np.where(at_boundary, alive_quiet * hazard, 0.0)
        alive_quiet *= np.where(at_boundary, 1.0 - hazard, 1.0)
        lo = np.maximum(np.maximum(signup, window_start), week_start)
        exposure = np.clip(min(week_end, window_end) - lo, 0, None) / WEEK
        alive_quiet *= np.exp(-rate * grid.season(week) * np.where(start_week <= week, exposure, 0))
    probability = gone_quiet + alive_quiet

    # A churned customer buys in the window only by coming back (with a win-back purchase).
    reactivated = seconds_of(customers["reactivated_at"])[known]
    may_return = (reactivated == NO_TIME) | (reactivated > grid.start(snap_week))
    stays_away = (1.0 - REACTIVATION_WEEKLY) ** (horizon_days / 7)
    probability[churned] = np.where(may_return[churned], stays_away, 1.0)
    return pd.DataFrame({
        "customer_id": customers["customer_id"].take(known).to_pandas(),
        "oracle_churn_probability": np.clip(probability, 0.0, 1.0),
    })


def oracle_for(data_dir: Path, customer_ids: pd.Series, cutoff: date, horizon_days: int) -> np.ndarray:
    """The oracle's churn probability at cutoff for each of customer_ids, in their order, for
    a demo world in data_dir; NaN for a customer the truth does not know (e.g. one who signed
    up on or after the cutoff)."""
    oracle = oracle_churn_probability(Path(data_dir) / "truth", cutoff, horizon_days)
    by_customer = oracle.set_index("customer_id")["oracle_churn_probability"]
    return by_customer.reindex(customer_ids).to_numpy(dtype=float)
