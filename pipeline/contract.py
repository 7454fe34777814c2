"""The data contract: every input table, its columns, their types and the rules they obey.

This is the one place that defines what the pipeline accepts. Validation, the demo-world
generator, the feature stages and the README table all read it from here.

Rules come in two strengths:
- hard rules stop the run before anything is written (a wrong type, a duplicate key, ...);
- soft rules set the offending rows aside into the quarantine folder and the run goes on
  (an event for a customer missing from `customers`, a zero-amount transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["string", "timestamp", "number", "integer", "boolean"]

# The SQL type each kind is cast to when a table is read (DuckDB names).
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
}

# Money is summed as this exact type: floating-point sums depend on the order of parallel
# work, and scores must not. Values of 18 digits are 64-bit integers to the engine, much
# faster to add up than wider ones (sums widen by themselves); the contract's bounds on
# amounts (MONEY_LIMIT) keep every value inside them.
MONEY = "DECIMAL(18, 6)"
MONEY_LIMIT = 1e11


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind
    description: str
    required: bool = False  # the column must exist and no value may be empty
    unique: bool = False
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True)
class OrderRule:
    """`later` must not be before `earlier` on the same row (when both are present)."""

    earlier: str
    later: str
    name: str


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    required: bool = False  # the file must exist
    event_time: str | None = None  # the timestamp that places a row in time
    order_rules: tuple[OrderRule, ...] = ()
    # Soft rule: rows whose customer is not in `customers` are quarantined.
    references_customers: bool = True
    # Soft rule: rows where this column is exactly zero are quarantined.
    quarantine_zero: str | None = None
    allow_extra_columns: bool = False
    timestamp_columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        ts = tuple(c.name for c in self.columns if c.kind == "timestamp")
        object.__setattr__(self, "timestamp_columns", ts)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def key(self) -> str | None:
        return next((c.name for c in self.columns if c.unique), None)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = Table(
    name="customers",
    description="One row per customer. Extra columns (email, name, ...) are kept for passthrough.",
    required=True,
    references_customers=False,
    allow_extra_columns=True,
    columns=(
        Column("customer_id", "string", "Customer identifier.", required=True, unique=True),
        Column("signup_at", "timestamp", "Signup moment; when absent the first purchase is the start."),
        Column("country", "string", "Country of the customer."),
        Column("acquisition_channel", "string", "Channel that acquired the customer."),
        Column("is_loyalty_member", "boolean", "Member of the loyalty programme."),
    ),
)

TRANSACTIONS = Table(
    name="transactions",
    description="One row per purchase or refund (negative amount).",
    required=True,
    event_time="purchased_at",
    quarantine_zero="amount",
    columns=(
        Column("transaction_id", "string", "Transaction identifier.", required=True, unique=True),
        Column("customer_id", "string", "Customer who bought.", required=True),
        Column("purchased_at", "timestamp", "Moment of purchase.", required=True),
        Column("amount", "number", "Net amount; negative for a refund or return.", required=True,
               min_value=-MONEY_LIMIT, max_value=MONEY_LIMIT),
        Column("category", "string", "Product category."),
        Column("discount_amount", "number", "Discount granted on this purchase.", min_value=0,
               max_value=MONEY_LIMIT),
        Column("sales_channel", "string", "Where the purchase happened (web, app, store, ...)."),
    ),
)

INTERACTIONS = Table(
    name="interactions",
    description="One row per engagement event on a channel.",
    event_time="occurred_at",
    columns=(
        Column("customer_id", "string", "Customer who interacted.", required=True),
        Column("occurred_at", "timestamp", "Moment of the event.", required=True),
        Column("channel", "string", "email, web, app, social, phone, store, ...", required=True),
        Column("event_type", "string", "open, click, visit, login, ..."),
    ),
)

SUPPORT_TICKETS = Table(
    name="support_tickets",
    description="One row per support ticket.",
    event_time="opened_at",
    order_rules=(OrderRule("opened_at", "resolved_at", "resolved before opened"),),
    columns=(
        Column("ticket_id", "string", "Ticket identifier.", required=True, unique=True),
        Column("customer_id", "string", "Customer who opened the ticket.", required=True),
        Column("opened_at", "timestamp", "Moment the ticket was opened.", required=True),
        Column("resolved_at", "timestamp", "Moment it was resolved; empty while open."),
        Column("category", "string", "billing, delivery, product, complaint, ..."),
        Column("priority", "string", "low, normal, high, ..."),
        Column("satisfaction", "integer", "CSAT after resolution, 1-5.", min_value=1, max_value=5),
        Column("effort_score", "integer", "Customer effort score, 1-7.", min_value=1, max_value=7),
    ),
)

SURVEYS = Table(
    name="surveys",
    description="One row per NPS survey answer.",
    event_time="responded_at",
    columns=(
        Column("customer_id", "string", "Customer who answered.", required=True),
        Column("responded_at", "timestamp", "Moment of the answer.", required=True),
        Column("nps_score", "integer", "Likelihood to recommend, 0-10.", required=True,
               min_value=0, max_value=10),
    ),
)

SUBSCRIPTIONS = Table(
    name="subscriptions",
    description="One row per subscription (contractual business).",
    event_time="started_at",
    order_rules=(OrderRule("started_at", "ended_at", "ended before started"),),
    columns=(
        Column("subscription_id", "string", "Subscription identifier.", required=True, unique=True),
        Column("customer_id", "string", "Subscriber.", required=True),
        Column("plan", "string", "Plan name.", required=True),
        Column("started_at", "timestamp", "Start of the subscription.", required=True),
        Column("ended_at", "timestamp", "End; empty while active."),
        Column("monthly_fee", "number", "Monthly fee.", min_value=0),
        Column("cancel_reason", "string", "Why it ended, when known."),
    ),
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (CUSTOMERS, TRANSACTIONS, INTERACTIONS, SUPPORT_TICKETS, SURVEYS, SUBSCRIPTIONS)
}
