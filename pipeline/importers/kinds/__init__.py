"""One converter per kind of export: (typed records, mapping, customers) -> contract tables,
and the account of every record that was not written (skipped on purpose, or set aside
because its customer could not be identified)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.importers.kinds import contacts, email_events, orders, survey_responses, tickets, web_events
from pipeline.importers.kinds.ledger import Converted, Ledger

__all__ = ["KINDS", "Converted", "Ledger", "Converter"]

Converter = Callable[..., Converted]
KINDS: dict[str, Converter] = {
    "orders": orders.convert,
    "tickets": tickets.convert,
    "contacts": contacts.convert,
    "email_events": email_events.convert,
    "web_events": web_events.convert,
    "survey_responses": survey_responses.convert,
}
# Kinds that create customers when no customers table is given (the shop's emails).
CREATES_CUSTOMERS = frozenset({"contacts", "orders"})
