"""The demo world's subscriptions: paid plans of about a quarter of customers, drawn once the
weekly simulation knows who churned and when.

A subscription ends when its customer churns (often after a downgrade in the weeks before);
a few customers change plan along the way, which ends the old row and starts a new one.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.demo.latent import LatentWorld
from pipeline.demo.timeline import NO_TIME, WEEK, timestamps
from pipeline.demo.writing import choice, labels, prefixed_ids, time_of_day

SUBSCRIBER_SHARE = {False: 0.21, True: 0.35}  # by loyalty membership
SUBSCRIBED_AT_SIGNUP_SHARE = 0.6  # the others in the first half of their time as customers
PLANS = ("basic", "plus", "premium")
PLAN_FEES = np.array([9.99, 19.99, 29.99])
PLAN_WEIGHTS = (0.5, 0.35, 0.15)
DOWNGRADE_BEFORE_CHURN_SHARE = 0.4
PLAN_CHANGE_SHARE = 0.12
CANCEL_REASONS = ("too_expensive", "not_using", "switched_provider", "service_issues", "other")
CANCEL_REASON_WEIGHTS = (0.3, 0.3, 0.15, 0.15, 0.1)
SUBSCRIPTION_ID_DIGITS = 8


def draw_subscriptions(rng: np.random.Generator, latent: LatentWorld, world_end: int,
                       customer_ids: pa.Array) -> pa.Table:
    """The subscriptions table (contract columns, one row per plan period, ordered by start)
    of a simulated world whose events end at world_end (epoch seconds)."""
    signup, churned_at = latent.traits.signup, latent.churned_at
    n = len(signup)
    churned = churned_at != NO_TIME
    life_end = np.where(churned, churned_at, world_end)
    subscriber = rng.random(n) < np.where(
        latent.traits.is_loyalty_member, SUBSCRIBER_SHARE[True], SUBSCRIBER_SHARE[False])
    at_signup = rng.random(n) < SUBSCRIBED_AT_SIGNUP_SHARE
    started = np.where(at_signup, signup + rng.integers(60, 3600, n),
                       signup + (rng.random(n) * 0.5 * (life_end - signup)).astype(np.int64))
    who = np.flatnonzero(subscriber & (started < life_end))
    started, churned, life_end = started[who], churned[who], life_end[who]
    k = len(who)
    plan = choice(rng, PLAN_WEIGHTS, k)
    ended = np.where(churned, life_end + time_of_day(rng, k), NO_TIME)

    # Plan changes: downgrades in the weeks before churning, and some at random.
    before_churn = life_end - rng.uniform(2, 10, k) * WEEK
    downgrade_first = churned & (plan > 0) & (rng.random(k) < DOWNGRADE_BEFORE_CHURN_SHARE) & (
        before_churn > started)
    random_change = ~downgrade_first & (rng.random(k) < PLAN_CHANGE_SHARE)
    change_at = np.where(downgrade_first, before_churn,
                         started + rng.random(k) * (life_end - started)).astype(np.int64)
    changed = (downgrade_first | random_change) & (change_at > started)
    going_down = downgrade_first | ((plan == 2) | ((plan == 1) & (rng.random(k) < 0.5)))
    new_plan = np.where(going_down, plan - 1, plan + 1)

    c = np.flatnonzero(changed)
    customers = np.concatenate([who, who[c]])
    start = np.concatenate([started, change_at[c]])
    end = np.concatenate([np.where(changed, change_at, ended), ended[c]])
    plans = np.concatenate([plan, new_plan[c]])
    reason = choice(rng, CANCEL_REASON_WEIGHTS, len(customers))
    cancelled = end != NO_TIME
    cancelled[: k] &= ~changed  # a plan change ends the old row without a reason
    order = np.lexsort((customers, start))
    customers, start, end, plans, reason, cancelled = (
        a[order] for a in (customers, start, end, plans, reason, cancelled))
    return pa.table({
        "subscription_id": prefixed_ids("S", np.arange(1, len(customers) + 1), SUBSCRIPTION_ID_DIGITS),
        "customer_id": customer_ids.take(customers),
        "plan": labels(PLANS, plans),
        "started_at": timestamps(start),
        "ended_at": timestamps(end),
        "monthly_fee": PLAN_FEES[plans],
        "cancel_reason": pc.if_else(cancelled, labels(CANCEL_REASONS, reason), None),
    })
