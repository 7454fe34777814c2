"""One converter per kind of export: (typed records, mapping, customers) -> contract tables,
and the account of every record that was not written (skipped on purpose, or set aside
because its customer could not be identified)."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.errors import ConfigError
from pipeline.importers.kinds import contacts, email_events, orders, survey_responses, tickets, web_events
from pipeline.importers.kinds.ledger import Converted, Ledger

__all__ = ["KINDS", "Converted", "Ledger", "Converter", "check_fields"]

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
NEEDS = {"orders": orders.NEEDS, "tickets": tickets.NEEDS, "contacts": contacts.NEEDS,
         "email_events": email_events.NEEDS, "web_events": web_events.NEEDS,
         "survey_responses": survey_responses.NEEDS}


def check_fields(mapping) -> None:
    """A mapping must name every field its kind reads (an edited copy may have renamed one)."""
    absent = [name for name in NEEDS[mapping.kind] if name not in mapping.fields]
    if absent:
        raise ConfigError(f"Source mapping {mapping.path} (kind {mapping.kind}) lacks the field(s) {absent} under "
                          f"`fields`; a {mapping.kind} mapping reads {list(NEEDS[mapping.kind])}. Compare it with the "
                          "built-in mappings in configs/sources/ (a column may be marked required: false, but the "
                          "field must be there).")
