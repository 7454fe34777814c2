"""The demo world's latent side: the churn model that drives it, stepped week by week.

Every customer carries latent traits (how often they buy, how satisfied they are, whether
they live on discounts, ...) and a latent state that moves week by week: an engagement that
drifts (down, for many) and drives purchase and interaction rates, the weeks of silence on
every channel, open support tickets and a grievance stock from complaints and slow service.
A weekly hazard built from these decides who churns. Churned customers stop buying; a few
come back once (a win-back purchase marks the return).

`LatentWorld` steps this model one week at a time, vectorised over customers; the observable
events (`pipeline.demo.world`) are drawn from the rates it hands out and fed back into it.
What it records - churn and reactivation moments, traits, and monthly snapshots of hazard
and purchase rate - becomes the truth folder (`pipeline.demo.truth`), which no pipeline
stage reads; the oracle reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from pipeline.demo.timeline import DAY, NO_TIME, WEEK, date_of, epoch_seconds

# Purchases peak in November (Black Friday) and December, dip in summer and after New Year.
MONTH_SEASON = np.array([0.85, 0.85, 0.95, 0.95, 1.0, 0.95, 0.9, 0.9, 0.95, 1.0, 1.35, 1.55])

# The weekly hazard is cloglog-linear: h = 1 - exp(-exp(eta)), eta = log(BASE) + effects.
BASE_WEEKLY_HAZARD = 0.0015
LOW_ENGAGEMENT_EFFECT = 1.6  # per unit of log-engagement below 0
SILENCE_EFFECT = 0.08  # per week without a purchase or an interaction ...
SILENCE_CAP_WEEKS = 20  # ... counted up to this many weeks
OPEN_TICKET_EFFECT = 1.5  # while a ticket is unresolved
GRIEVANCE_EFFECT = 0.6  # per unit of grievance (a complaint adds 1)
SATISFACTION_EFFECT = 0.9  # per unit of latent satisfaction (standard normal)
DISCOUNT_DEPENDENCE_EFFECT = 0.8
NEW_CUSTOMER_EFFECT = 2.8  # decays with tenure ...
NEW_CUSTOMER_WEEKS = 16  # ... over a few months
LOYALTY_EFFECT = -0.8
ACQUISITION_CHANNELS = ("organic", "paid_search", "social", "referral", "affiliate")
ACQUISITION_WEIGHTS = (0.35, 0.25, 0.15, 0.12, 0.13)
ACQUISITION_EFFECT = np.array([0.0, 0.15, 0.1, -0.2, 0.3])  # referred customers stay longest

# Purchase rates are gamma-distributed (a few heavy buyers, many occasional ones);
# interaction rates follow them loosely.
MEAN_WEEKLY_PURCHASES = 1.4
PURCHASE_RATE_SHAPE = 1.1
MEAN_WEEKLY_INTERACTIONS = 0.64
LOYALTY_SHARE = {False: 0.3, True: 0.45}  # by referral
DISCOUNT_DEPENDENT_SHARE = {False: 0.15, True: 0.3}  # by affiliate acquisition
DECLINING_SHARE = 0.45  # customers whose engagement drifts down ...
DECLINE_PER_WEEK = (0.01, 0.06)  # ... by this much a week (log-scale)

# Engagement is a log-scale random walk with a per-customer drift; grievance pulls it down.
ENGAGEMENT_NOISE = 0.07
ENGAGEMENT_BOUNDS = (-4.0, 1.0)
GRIEVANCE_ON_ENGAGEMENT = 0.03
GRIEVANCE_ON_SATISFACTION = 0.6
GRIEVANCE_KEEP_PER_WEEK = 0.93  # half-life of about ten weeks
COMPLAINT_GRIEVANCE = 1.0
SLOW_TICKET_GRIEVANCE = 1.6
SLOW_TICKET_SECONDS = 7 * DAY

REACTIVATION_WEEKLY = 0.002  # chance per week that a churned customer comes back (only once)


@dataclass(frozen=True)
class WeekGrid:
    """Weeks ending exactly at the end of the world: week w is [start(w), start(w + 1))."""

    end: int  # epoch seconds of the midnight after the last day with events
    n_weeks: int

    @classmethod
    def for_world(cls, end_date: date, years: float) -> WeekGrid:
        return cls(epoch_seconds(end_date + timedelta(days=1)), max(1, round(years * 365.25 / 7)))

    def start(self, week: int | np.ndarray) -> int | np.ndarray:
        return self.end - (self.n_weeks - np.asarray(week, dtype=np.int64)) * WEEK

    def week_of(self, seconds: int | np.ndarray) -> int | np.ndarray:
        return (np.asarray(seconds, dtype=np.int64) - self.start(0)) // WEEK

    def season(self, week: int) -> float:
        """Purchase multiplier of a week: that of the month of its middle day."""
        middle = date_of(int(self.start(week)) + WEEK // 2)
        return float(MONTH_SEASON[middle.month - 1])

    def month_firsts(self) -> dict[int, date]:
        """The first day of every calendar month in the world, keyed by the week it falls in."""
        day, last = date_of(int(self.start(0))), date_of(self.end - 1)
        day = day if day.day == 1 else (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        firsts = {}
        while day <= last:
            firsts[int(self.week_of(epoch_seconds(day)))] = day
            day = (day + timedelta(days=32)).replace(day=1)
        return firsts


@dataclass
class Traits:
    """Latent per-customer traits; arrays aligned with customers sorted by signup."""

    signup: np.ndarray  # epoch seconds, ascending
    acquisition_channel: np.ndarray  # index into ACQUISITION_CHANNELS
    is_loyalty_member: np.ndarray
    is_discount_dependent: np.ndarray
    base_purchase_rate: np.ndarray  # purchases per week at engagement 0, before seasonality
    interaction_rate: np.ndarray  # interactions per week at engagement 0
    ticket_propensity: np.ndarray  # multiplier of the average ticket rate
    satisfaction: np.ndarray  # standard normal, before grievance
    initial_engagement: np.ndarray  # log-scale
    engagement_drift: np.ndarray  # per week, log-scale

    @classmethod
    def draw(cls, rng: np.random.Generator, signup: np.ndarray) -> Traits:
        n = len(signup)
        channel = rng.choice(len(ACQUISITION_CHANNELS), n, p=ACQUISITION_WEIGHTS)
        referred = channel == ACQUISITION_CHANNELS.index("referral")
        affiliate = channel == ACQUISITION_CHANNELS.index("affiliate")
        base_rate = rng.gamma(PURCHASE_RATE_SHAPE, MEAN_WEEKLY_PURCHASES / PURCHASE_RATE_SHAPE, n)
        interaction = (MEAN_WEEKLY_INTERACTIONS * np.sqrt(base_rate / MEAN_WEEKLY_PURCHASES)
                       * rng.gamma(2.0, 0.5, n))
        declining = rng.random(n) < DECLINING_SHARE
        return cls(
            signup=signup,
            acquisition_channel=channel.astype(np.int8),
            is_loyalty_member=rng.random(n) < np.where(
                referred, LOYALTY_SHARE[True], LOYALTY_SHARE[False]),
            is_discount_dependent=rng.random(n) < np.where(
                affiliate, DISCOUNT_DEPENDENT_SHARE[True], DISCOUNT_DEPENDENT_SHARE[False]),
            base_purchase_rate=base_rate,
            interaction_rate=interaction,
            ticket_propensity=rng.gamma(2.0, 0.5, n),
            satisfaction=rng.standard_normal(n),
            initial_engagement=rng.normal(0.0, 0.25, n),
            engagement_drift=np.where(declining, -rng.uniform(*DECLINE_PER_WEEK, n), 0.0),
        )


@dataclass
class WeekRates:
    """What the observable side needs to draw one week's events, for customers [0, n)."""

    week: int
    n: int  # customers signed up by the end of the week (a prefix: sorted by signup)
    active_from: np.ndarray  # epoch seconds from which each customer can act this week
    exposure: np.ndarray  # fraction of the week each customer is active (0 when not)
    purchase_rate: np.ndarray  # expected purchases this week, seasonality and exposure in
    interaction_rate: np.ndarray  # expected engagement events this week
    lapsed: np.ndarray  # churned customers (they still open the odd marketing email)
    satisfaction: np.ndarray  # current latent satisfaction (drives complaints, CSAT, NPS)
    comebacks: np.ndarray  # customers reactivated this week ...
    comeback_at: np.ndarray  # ... and when (each makes a win-back purchase then)


@dataclass
class Snapshot:
    """The latent state on a month's first day, for the truth: who is alive then (taken at
    the start of the week holding that day), with their hazard and purchase rate."""

    day: date
    customers: np.ndarray  # indices of the customers alive
    weekly_hazard: np.ndarray  # chance of churning at the next week boundary
    weekly_purchase_rate: np.ndarray  # expected purchases per week, before seasonality


class LatentWorld:
    """The latent state of every customer, stepped one week at a time."""

    def __init__(self, traits: Traits, grid: WeekGrid, rng: np.random.Generator):
        n = len(traits.signup)
        self.traits, self.grid, self.rng = traits, grid, rng
        self.engagement = traits.initial_engagement.copy()
        self.silence_weeks = np.zeros(n, np.int16)
        self.grievance = np.zeros(n)
        self.open_ticket_until = np.full(n, NO_TIME, np.int64)
        self.alive = np.zeros(n, bool)
        self.churn_count = np.zeros(n, np.int8)
        self.churned_at = np.full(n, NO_TIME, np.int64)
        self.reactivated_at = np.full(n, NO_TIME, np.int64)
        self.churned_again_at = np.full(n, NO_TIME, np.int64)
        self.initial_hazard = np.zeros(n, np.float32)
        self.initial_purchase_rate = np.zeros(n, np.float32)
        self.n_signed = 0
        self.month_firsts = grid.month_firsts()

    def satisfaction(self, n: int) -> np.ndarray:
        return self.traits.satisfaction[:n] - GRIEVANCE_ON_SATISFACTION * self.grievance[:n]

    def weekly_hazard(self, n: int, week_start: int) -> np.ndarray:
        t = self.traits
        tenure_weeks = np.maximum(week_start - t.signup[:n], 0) / WEEK
        eta = (
            np.log(BASE_WEEKLY_HAZARD)
            - LOW_ENGAGEMENT_EFFECT * np.minimum(self.engagement[:n], 0.0)
            + SILENCE_EFFECT * np.minimum(self.silence_weeks[:n], SILENCE_CAP_WEEKS)
            + OPEN_TICKET_EFFECT * (self.open_ticket_until[:n] > week_start)
            + GRIEVANCE_EFFECT * self.grievance[:n]
            - SATISFACTION_EFFECT * self.satisfaction(n)
            + DISCOUNT_DEPENDENCE_EFFECT * t.is_discount_dependent[:n]
            + NEW_CUSTOMER_EFFECT * np.exp(-tenure_weeks / NEW_CUSTOMER_WEEKS)
            + LOYALTY_EFFECT * t.is_loyalty_member[:n]
            + ACQUISITION_EFFECT[t.acquisition_channel[:n]]
        )
        return -np.expm1(-np.exp(eta))

    def weekly_purchase_rate(self, n: int) -> np.ndarray:
        """Purchases per full week, before seasonality."""
        return self.traits.base_purchase_rate[:n] * np.exp(self.engagement[:n])

    def start_week(self, week: int) -> tuple[WeekRates, Snapshot | None]:
        """Sign up newcomers, draw churn and reactivation at the week's start, and hand out
        the week's rates; on the week holding a month's first day, also its truth snapshot."""
        week_start, week_end = int(self.grid.start(week)), int(self.grid.start(week + 1))
        n = int(np.searchsorted(self.traits.signup, week_end))
        newcomers = slice(self.n_signed, n)
        self.alive[newcomers] = True
        existing = self.traits.signup[:n] < week_start

        hazard = self.weekly_hazard(n, week_start)
        rate = self.weekly_purchase_rate(n)
        self.initial_hazard[newcomers] = hazard[newcomers]
        self.initial_purchase_rate[newcomers] = rate[newcomers]

        churns = np.flatnonzero(self.alive[:n] & existing & (self.rng.random(n) < hazard))
        comebacks = np.flatnonzero(
            ~self.alive[:n] & (self.churn_count[:n] == 1) & (self.churned_at[:n] < week_start)
            & (self.rng.random(n) < REACTIVATION_WEEKLY)
        )
        self._churn(churns, week_start)
        comeback_at = week_start + self.rng.integers(0, WEEK, len(comebacks))
        self._reactivate(comebacks, comeback_at)

        snapshot = None
        first = self.month_firsts.get(week)
        if first is not None:
            alive = np.flatnonzero(self.alive[:n])
            snapshot = Snapshot(first, alive, hazard[alive], rate[alive])

        active = self.alive[:n].copy()
        active[comebacks] = False  # back with the win-back purchase; regular from next week
        active_from = np.maximum(self.traits.signup[:n], week_start)
        exposure = np.where(active, (week_end - active_from) / WEEK, 0.0)
        self.n_signed = n
        rates = WeekRates(
            week=week, n=n, active_from=active_from, exposure=exposure,
            purchase_rate=rate * self.grid.season(week) * exposure,
            interaction_rate=self.traits.interaction_rate[:n] * np.exp(self.engagement[:n]) * exposure,
            lapsed=~self.alive[:n], satisfaction=self.satisfaction(n),
            comebacks=comebacks, comeback_at=comeback_at,
        )
        return rates, snapshot

    def _churn(self, customers: np.ndarray, at: int) -> None:
        first = self.churn_count[customers] == 0
        self.churned_at[customers[first]] = at
        self.churned_again_at[customers[~first]] = at
        self.churn_count[customers] += 1
        self.alive[customers] = False

    def _reactivate(self, customers: np.ndarray, at: np.ndarray) -> None:
        self.reactivated_at[customers] = at
        self.alive[customers] = True
        # A returning customer starts afresh: engaged as at signup, no silence, no grudge.
        self.engagement[customers] = self.traits.initial_engagement[customers]
        self.silence_weeks[customers] = 0
        self.grievance[customers] = 0.0

    def record_tickets(self, customers: np.ndarray, complaint: np.ndarray,
                       resolution_seconds: np.ndarray, resolved_at: np.ndarray) -> None:
        """Tickets opened this week: complaints and slow service build grievance; a ticket
        counts as open (raising the hazard) until it is resolved (forever when never)."""
        grievance = COMPLAINT_GRIEVANCE * complaint + SLOW_TICKET_GRIEVANCE * (
            resolution_seconds > SLOW_TICKET_SECONDS)
        np.add.at(self.grievance, customers, grievance)
        until = np.where(resolved_at == NO_TIME, np.iinfo(np.int64).max, resolved_at)
        np.maximum.at(self.open_ticket_until, customers, until)

    def end_week(self, rates: WeekRates, active_customers: np.ndarray) -> None:
        """Move the latent state to the next week given who bought or interacted."""
        n = rates.n
        heard_from = np.zeros(n, bool)
        heard_from[active_customers] = True
        in_play = rates.exposure > 0
        self.silence_weeks[:n] = np.where(
            heard_from, 0, np.minimum(self.silence_weeks[:n] + in_play, np.iinfo(np.int16).max))
        step = (self.traits.engagement_drift[:n] - GRIEVANCE_ON_ENGAGEMENT * self.grievance[:n]
                + ENGAGEMENT_NOISE * self.rng.standard_normal(n))
        self.engagement[:n] = np.clip(self.engagement[:n] + step * in_play, *ENGAGEMENT_BOUNDS)
        self.grievance[:n] *= GRIEVANCE_KEEP_PER_WEEK
