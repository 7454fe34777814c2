"""The demo world's generator: a synthetic retailer's customers and their events, with churn
planted.

`generate_world` writes one file per contract table into a folder, and the world's hidden
truth into its `truth/` subfolder. Customers arrive over the years before the end date
(a growing business with seasonal peaks); each week, the latent model in
`pipeline.demo.latent` says who churns and at what rates the others buy, engage, open
tickets and answer surveys, and this module draws the observable events from those rates.
Everything is vectorised over customers and written week block by week block, so a world of
a million customers (some 50 million transactions) never sits in memory at once.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contract import TABLES
from pipeline.demo import check_world_folder, write_marker
from pipeline.demo.latent import ACQUISITION_CHANNELS, LatentWorld, Traits, WeekGrid, WeekRates
from pipeline.demo.subscriptions import draw_subscriptions
from pipeline.demo.timeline import DAY, NO_TIME, WEEK, timestamps
from pipeline.demo.truth import SNAPSHOT_SCHEMA, customers_table, snapshot_table, write_world_facts
from pipeline.demo.writing import (
    ARROW_TYPES,
    TableSink,
    choice,
    choice_per_row,
    labels,
    names_and_emails,
    prefixed_ids,
    time_of_day,
)
from pipeline.files import atomic_directory, output_error
from pipeline.logs import progress

# ARROW_TYPES lives in writing; re-exported for callers that write contract tables the way the
# generator does (the generator benchmark's baseline).
__all__ = ["ARROW_TYPES", "DEFAULT_END_DATE", "generate_world"]

DEFAULT_END_DATE = date(2025, 12, 31)  # last day with events
logger = logging.getLogger(__name__)

COUNTRIES = ("DE", "FR", "NL", "AT", "CH", "GB", "US")
COUNTRY_WEIGHTS = (0.34, 0.16, 0.12, 0.1, 0.08, 0.12, 0.08)

CATEGORIES = ("fashion", "electronics", "home", "beauty", "sports", "grocery")
CATEGORY_WEIGHTS = (0.25, 0.12, 0.18, 0.15, 0.1, 0.2)
FAVOURITE_CATEGORY_SHARE = 0.55
SALES_CHANNELS = ("web", "app", "store")
SALES_CHANNEL_WEIGHTS = (0.5, 0.3, 0.2)
PREFERRED_SALES_CHANNEL_SHARE = 0.7
AMOUNT_NOISE = 0.55  # lognormal sigma of one basket around the customer's spend level
DISCOUNT_SHARE = {False: 0.08, True: 0.65}  # by discount dependence
REFUND_SHARE = 0.03
PARTIAL_REFUND_SHARE = 0.3

INTERACTION_CHANNELS = ("email", "web", "app", "social", "phone", "store")
INTERACTION_CHANNEL_WEIGHTS = (0.4, 0.25, 0.15, 0.1, 0.04, 0.06)
PREFERRED_INTERACTION_SHARE = 0.5
EVENT_TYPES = ("open", "click", "visit", "login", "call")
EVENT_TYPE_BY_CHANNEL = np.array([  # rows follow INTERACTION_CHANNELS
    [0.7, 0.3, 0.0, 0.0, 0.0],
    [0.0, 0.2, 0.6, 0.2, 0.0],
    [0.0, 0.1, 0.3, 0.6, 0.0],
    [0.0, 0.6, 0.4, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0, 0.0, 0.0],
])
LAPSED_EMAIL_SHARE = 0.05  # churned customers still open marketing emails, rarely

TICKETS_PER_WEEK = 0.058
TICKET_CATEGORIES = ("billing", "delivery", "product", "complaint")
OTHER_TICKET_WEIGHTS = (0.35, 0.4, 0.25)
PRIORITIES = ("low", "normal", "high")
PRIORITY_WEIGHTS = {False: (0.3, 0.55, 0.15), True: (0.1, 0.4, 0.5)}  # by complaint
MEDIAN_RESOLUTION_HOURS = np.array([60.0, 30.0, 12.0])  # by priority
RESOLUTION_SPREAD = 1.2  # lognormal sigma: some tickets take weeks
CSAT_ANSWER_SHARE = 0.6
EFFORT_ANSWER_SHARE = 0.5

SURVEYS_PER_WEEK = 0.012

ARRIVAL_GROWTH = np.log(2.5)  # the last day sees 2.5 times the arrivals of the first
ARRIVAL_SEASON = np.array([1.2, 1.0, 1.0, 0.95, 0.95, 0.9, 0.85, 0.9, 1.0, 1.05, 1.3, 1.2])

ID_DIGITS = {"transaction": 10, "ticket": 9}
EVENT_TABLES = ("transactions", "interactions", "support_tickets", "surveys")


def generate_world(out_dir: Path, n_customers: int, seed: int, end_date: date = DEFAULT_END_DATE,
                   years: float = 3.0, fmt: Literal["parquet", "csv"] = "parquet",
                   log: logging.Logger | None = None, replace: bool = False) -> dict[str, int]:
    """Write a synthetic world in the data contract's format into out_dir (one file per
    table: <table>.parquet or <table>.csv), its truth into out_dir/truth/, and the marker
    `.churn-demo-world` that makes it a demo world. Returns row counts per table.
    Deterministic for a seed (same seed and args -> byte-identical files).

    out_dir may be missing or empty; an earlier demo world there is replaced only with
    `replace`; a folder holding anything else is refused with OutputError and never touched
    (see `check_world_folder`). Atomic: built in a staging folder beside out_dir, then
    swapped in (a crash leaves the old folder, never half a world). The truth is Parquet in
    both formats; see `pipeline.demo.truth` for what it holds."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    log = log or logger
    began = time.perf_counter()
    out_dir = Path(out_dir)
    run = {"seed": seed, "n_customers": n_customers, "end_date": end_date.isoformat(),
           "years": years, "format": fmt}
    try:
        with atomic_directory(out_dir, guard=lambda folder: check_world_folder(folder, replace)) as build_dir:
            counts = _World(build_dir, WeekGrid.for_world(end_date, years), fmt, run, log).build()
            write_marker(build_dir, run)
    except OSError as exc:
        raise output_error(exc, out_dir, "write the demo world to", "--out (data.path, for churn demo)") from exc
    log.info("world of %s customers written to %s in %.1f s",
             f"{n_customers:,}", out_dir, time.perf_counter() - began)
    return counts


@dataclass
class Preferences:
    """Observable habits per customer: what, where and how much they buy, where they engage."""

    spend_level: np.ndarray  # log of a typical basket
    favourite_category: np.ndarray
    sales_channel: np.ndarray
    interaction_channel: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> Preferences:
        return cls(
            spend_level=rng.normal(np.log(40.0), 0.45, n),
            favourite_category=choice(rng, CATEGORY_WEIGHTS, n),
            sales_channel=choice(rng, SALES_CHANNEL_WEIGHTS, n),
            interaction_channel=choice(rng, INTERACTION_CHANNEL_WEIGHTS, n),
        )


class _World:
    """One generation run: the random streams, the latent model and the table writers."""

    def __init__(self, out: Path, grid: WeekGrid, fmt: str, run: dict, log: logging.Logger):
        self.out, self.grid, self.fmt, self.run, self.log = out, grid, fmt, run, log
        self.n = run["n_customers"]
        # One stream per concern, so that the draws of one table do not depend on how many
        # draws another one makes.
        streams = np.random.SeedSequence(run["seed"]).spawn(8)
        (self.rng_people, self.rng_latent, self.rng_purchases, self.rng_interactions,
         self.rng_tickets, self.rng_surveys, self.rng_subscriptions, self.rng_times) = (
            np.random.default_rng(s) for s in streams)
        self.next_id = {"transaction": 1, "ticket": 1}

    def build(self) -> dict[str, int]:
        (self.out / "truth").mkdir()
        self.customer_ids, self.latent, self.prefs = self._customers()
        counts = {"customers": self.n, **self._simulate(), "subscriptions": self._subscriptions()}
        self._truth()
        return counts

    def _logged(self, stage: str, began: float, detail: str) -> None:
        self.log.info("stage %-13s %s in %.2f s", stage, detail, time.perf_counter() - began)

    # --- customers -------------------------------------------------------------------

    def _customers(self) -> tuple[pa.Array, LatentWorld, Preferences]:
        began = time.perf_counter()
        rng = self.rng_people
        signup = self._signups()
        traits = Traits.draw(rng, signup)
        ids = prefixed_ids("C", np.arange(1, self.n + 1), max(7, len(str(self.n))))
        names, emails = names_and_emails(rng, self.n)
        table = pa.table({
            "customer_id": ids,
            "signup_at": timestamps(signup),
            "country": labels(COUNTRIES, choice(rng, COUNTRY_WEIGHTS, self.n)),
            "acquisition_channel": labels(ACQUISITION_CHANNELS, traits.acquisition_channel),
            "is_loyalty_member": traits.is_loyalty_member,
            "email": emails,
            "name": names,
        })
        with TableSink(self.out, TABLES["customers"], self.fmt, extra=("email", "name")) as sink:
            sink.write(table)
        self._logged("customers", began, f"{self.n:,} rows")
        return ids, LatentWorld(traits, self.grid, self.rng_latent), Preferences.draw(rng, self.n)

    def _signups(self) -> np.ndarray:
        """Signup moments, ascending: a growing business, busier in winter."""
        n_days = self.grid.n_weeks * 7
        first_day = np.datetime64(int(self.grid.start(0)) // DAY, "D")
        months = (first_day + np.arange(n_days)).astype("datetime64[M]").astype(int) % 12
        weight = np.exp(ARRIVAL_GROWTH * np.arange(n_days) / n_days) * ARRIVAL_SEASON[months]
        day = self.rng_people.choice(n_days, self.n, p=weight / weight.sum())
        seconds = int(self.grid.start(0)) + day * DAY + time_of_day(self.rng_people, self.n)
        return np.sort(seconds)

    # --- the weekly simulation ---------------------------------------------------------

    def _simulate(self) -> dict[str, int]:
        began = time.perf_counter()
        with ExitStack() as files:
            sinks = {name: files.enter_context(TableSink(self.out, TABLES[name], self.fmt))
                     for name in EVENT_TABLES}
            snapshots = files.enter_context(pq.ParquetWriter(
                self.out / "truth" / "snapshots.parquet", SNAPSHOT_SCHEMA, compression="zstd"))
            for week in progress(range(self.grid.n_weeks), self.grid.n_weeks, "simulating", "weeks"):
                rates, snapshot = self.latent.start_week(week)
                if snapshot is not None:
                    snapshots.write_table(snapshot_table(snapshot))
                purchases, buyers = self._purchases(rates)
                interactions, engaged = self._interactions(rates)
                sinks["transactions"].write(purchases)
                sinks["interactions"].write(interactions)
                sinks["support_tickets"].write(self._tickets(rates))
                sinks["surveys"].write(self._surveys(rates))
                self.latent.end_week(rates, np.concatenate([buyers, engaged]))
        counts = {name: sink.rows for name, sink in sinks.items()}
        self._logged("simulation", began, f"{self.grid.n_weeks} weeks, " + ", ".join(
            f"{name} {rows:,} rows" for name, rows in counts.items()))
        return counts

    def _event_times(self, rates: WeekRates, customers: np.ndarray) -> np.ndarray:
        """Moments within the week (evening-heavy); a newcomer's are squeezed into the part
        of the week after signup."""
        rng = self.rng_times
        offset = rng.integers(0, 7, len(customers)) * DAY + time_of_day(rng, len(customers))
        week_end = int(self.grid.start(rates.week + 1))
        start = rates.active_from[customers]
        return start + offset * (week_end - start) // WEEK

    def _purchases(self, rates: WeekRates) -> tuple[pa.Table, np.ndarray]:
        """This week's purchases (plus win-back purchases of returning customers) and their
        refunds; returns them with the buying customers."""
        rng, prefs = self.rng_purchases, self.prefs
        counts = rng.poisson(rates.purchase_rate)
        customers = np.concatenate([np.repeat(np.arange(rates.n), counts), rates.comebacks])
        at = np.concatenate([self._event_times(rates, customers[: counts.sum()]),
                             rates.comeback_at])
        k = len(customers)
        amount = _cents(np.exp(prefs.spend_level[customers] + AMOUNT_NOISE * rng.standard_normal(k)))
        amount = np.maximum(amount, 1.0)
        discounted = rng.random(k) < np.where(
            self.latent.traits.is_discount_dependent[customers], DISCOUNT_SHARE[True],
            DISCOUNT_SHARE[False])
        discount = np.where(discounted, _cents(amount * rng.uniform(0.05, 0.35, k)), 0.0)
        category = np.where(rng.random(k) < FAVOURITE_CATEGORY_SHARE,
                            prefs.favourite_category[customers], choice(rng, CATEGORY_WEIGHTS, k))
        channel = np.where(rng.random(k) < PREFERRED_SALES_CHANNEL_SHARE,
                           prefs.sales_channel[customers], choice(rng, SALES_CHANNEL_WEIGHTS, k))

        # A refund returns all or part of a purchase a few days later (if before the end).
        refunded = np.flatnonzero(rng.random(k) < REFUND_SHARE)
        share = np.where(rng.random(len(refunded)) < PARTIAL_REFUND_SHARE,
                         rng.uniform(0.2, 0.9, len(refunded)), 1.0)
        refund_at = at[refunded] + (rng.lognormal(np.log(5.0), 0.6, len(refunded)) * DAY).astype(
            np.int64)
        refunded, refund_at, share = (a[refund_at < self.grid.end]
                                      for a in (refunded, refund_at, share))

        rows = np.concatenate([np.arange(k), refunded])
        at = np.concatenate([at, refund_at])
        amount = np.concatenate([amount, -_cents(amount[refunded] * share)])
        discount = np.concatenate([discount, np.zeros(len(refunded))])
        order = np.argsort(at, kind="stable")
        rows, at, amount, discount = rows[order], at[order], amount[order], discount[order]
        table = pa.table({
            "transaction_id": self._new_ids("transaction", "T", len(rows)),
            "customer_id": self.customer_ids.take(customers[rows]),
            "purchased_at": timestamps(at),
            "amount": amount,
            "category": labels(CATEGORIES, category[rows]),
            "discount_amount": discount,
            "sales_channel": labels(SALES_CHANNELS, channel[rows]),
        })
        return table, customers

    def _interactions(self, rates: WeekRates) -> tuple[pa.Table, np.ndarray]:
        """Engagement events of active customers, plus the odd email opened by a churned one;
        returns them with the engaging active customers."""
        rng = self.rng_interactions
        counts = rng.poisson(rates.interaction_rate)
        engaged = np.repeat(np.arange(rates.n), counts)
        channel = np.where(rng.random(len(engaged)) < PREFERRED_INTERACTION_SHARE,
                           self.prefs.interaction_channel[engaged],
                           choice(rng, INTERACTION_CHANNEL_WEIGHTS, len(engaged)))
        event_type = choice_per_row(rng, EVENT_TYPE_BY_CHANNEL[channel])

        lapsed_rate = np.where(rates.lapsed, LAPSED_EMAIL_SHARE, 0.0) * (
            self.latent.traits.interaction_rate[: rates.n])
        lapsed = np.repeat(np.arange(rates.n), rng.poisson(lapsed_rate))
        customers = np.concatenate([engaged, lapsed])
        at = self._event_times(rates, customers)
        channel = np.concatenate([channel, np.zeros(len(lapsed), np.int64)])  # email ...
        event_type = np.concatenate([event_type, np.zeros(len(lapsed), np.int64)])  # ... open
        order = np.argsort(at, kind="stable")
        table = pa.table({
            "customer_id": self.customer_ids.take(customers[order]),
            "occurred_at": timestamps(at[order]),
            "channel": labels(INTERACTION_CHANNELS, channel[order]),
            "event_type": labels(EVENT_TYPES, event_type[order]),
        })
        return table, engaged

    def _tickets(self, rates: WeekRates) -> pa.Table:
        """Support tickets; unhappy customers complain more, slow resolution makes them
        less satisfied and raises their effort. Tickets feed back into the latent state."""
        rng = self.rng_tickets
        propensity = self.latent.traits.ticket_propensity[: rates.n]
        customers = np.repeat(np.arange(rates.n), rng.poisson(TICKETS_PER_WEEK * propensity
                                                              * rates.exposure))
        k = len(customers)
        mood = rates.satisfaction[customers]
        complaint = rng.random(k) < np.clip(0.1 - 0.07 * mood, 0.03, 0.4)
        category = np.where(complaint, TICKET_CATEGORIES.index("complaint"),
                            choice(rng, OTHER_TICKET_WEIGHTS, k))
        priority = np.where(complaint, choice(rng, PRIORITY_WEIGHTS[True], k),
                            choice(rng, PRIORITY_WEIGHTS[False], k))
        opened_at = self._event_times(rates, customers)
        took = (rng.lognormal(0.0, RESOLUTION_SPREAD, k) * MEDIAN_RESOLUTION_HOURS[priority]
                * 3600).astype(np.int64) + 60
        resolved_at = np.where(opened_at + took < self.grid.end, opened_at + took, NO_TIME)
        resolved = resolved_at != NO_TIME
        took_days = took / DAY
        csat = np.clip(np.rint(4.3 - 0.55 * np.log1p(took_days) + 0.45 * mood
                               + rng.normal(0, 0.7, k)), 1, 5).astype(np.int64)
        effort = np.clip(np.rint(2.3 + 0.9 * np.log1p(took_days) - 0.3 * mood
                                 + rng.normal(0, 0.9, k)), 1, 7).astype(np.int64)
        csat_given = resolved & (rng.random(k) < CSAT_ANSWER_SHARE)
        effort_given = resolved & (rng.random(k) < EFFORT_ANSWER_SHARE)
        self.latent.record_tickets(customers, complaint, took, resolved_at)
        o = np.argsort(opened_at, kind="stable")
        return pa.table({
            "ticket_id": self._new_ids("ticket", "K", k),
            "customer_id": self.customer_ids.take(customers[o]),
            "opened_at": timestamps(opened_at[o]),
            "resolved_at": timestamps(resolved_at[o]),
            "category": labels(TICKET_CATEGORIES, category[o]),
            "priority": labels(PRIORITIES, priority[o]),
            "satisfaction": pa.array(csat[o], mask=~csat_given[o]),
            "effort_score": pa.array(effort[o], mask=~effort_given[o]),
        })

    def _surveys(self, rates: WeekRates) -> pa.Table:
        """Occasional NPS answers, driven by latent satisfaction."""
        rng = self.rng_surveys
        customers = np.repeat(np.arange(rates.n), rng.poisson(SURVEYS_PER_WEEK * rates.exposure))
        k = len(customers)
        score = np.clip(np.rint(7.3 + 1.7 * rates.satisfaction[customers] + rng.normal(0, 1.3, k)),
                        0, 10).astype(np.int64)
        at = self._event_times(rates, customers)
        order = np.argsort(at, kind="stable")
        return pa.table({
            "customer_id": self.customer_ids.take(customers[order]),
            "responded_at": timestamps(at[order]),
            "nps_score": score[order],
        })

    # --- subscriptions -----------------------------------------------------------------

    def _subscriptions(self) -> int:
        """Drawn once the simulation has decided who churned, and when."""
        began = time.perf_counter()
        table = draw_subscriptions(self.rng_subscriptions, self.latent, self.grid.end,
                                   self.customer_ids)
        with TableSink(self.out, TABLES["subscriptions"], self.fmt) as sink:
            sink.write(table)
        self._logged("subscriptions", began, f"{len(table):,} rows")
        return len(table)

    # --- truth -------------------------------------------------------------------------

    def _truth(self) -> None:
        """truth/customers.parquet and truth/world.json (snapshots are written weekly)."""
        began = time.perf_counter()
        truth = customers_table(self.latent, self.customer_ids)
        pq.write_table(truth, self.out / "truth" / "customers.parquet", compression="zstd")
        write_world_facts(self.out / "truth", self.grid, **self.run)
        churned = self.n - truth["churned_at"].null_count
        came_back = self.n - truth["reactivated_at"].null_count
        self._logged("truth", began, f"{churned:,} customers churned, {came_back:,} came back")

    def _new_ids(self, kind: str, prefix: str, count: int) -> pa.Array:
        first = self.next_id[kind]
        self.next_id[kind] = first + count
        return prefixed_ids(prefix, np.arange(first, first + count), ID_DIGITS[kind])


# --- small vectorised helpers -------------------------------------------------------------


def _cents(values: np.ndarray) -> np.ndarray:
    return np.round(values, 2)
