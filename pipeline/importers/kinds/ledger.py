"""The account an import gives of its records: how many there were, which were skipped on
purpose and why (an unpaid order, a machine open), which were set aside because their
customer could not be identified, and how many were written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from pipeline.importers.linking import Customers, link_customers
from pipeline.importers.mapping import SourceMapping


@dataclass
class Converted:
    tables: dict[str, pd.DataFrame]  # contract table -> its rows, in the contract's columns
    records: int  # the export's records (orders, tickets, events) before any was left out
    matched: int  # records linked to a customer and written
    unmatched: Counter  # reason -> records set aside for want of a customer
    skipped: Counter  # reason -> records left out on purpose
    set_aside: pd.DataFrame  # every record left out: where it was, why, and its mapped fields


@dataclass
class Ledger:
    """Collects what a converter leaves out, row by row, with the reason."""

    records: int
    unmatched: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    left_out: list[pd.DataFrame] = field(default_factory=list)

    def skip(self, frame: pd.DataFrame, mask: pd.Series, reason) -> pd.DataFrame:
        """Leave out the rows where `mask` holds, counted under `reason` (text, or a Series
        of one reason per row); return the rest."""
        self._account(frame, mask, reason, self.skipped, "skipped")
        return frame[~mask]

    def link(self, frame: pd.DataFrame, mapping: SourceMapping, customers: Customers) -> pd.DataFrame:
        """The rows whose customer the mapping's link rules identify, with `customer_id`;
        the others are set aside as unmatched."""
        customer_id, reason = link_customers(frame, mapping, customers)
        return self.set_unmatched(frame.assign(customer_id=customer_id), customer_id.isna(), reason)

    def set_unmatched(self, frame: pd.DataFrame, mask: pd.Series, reason) -> pd.DataFrame:
        self._account(frame, mask, reason, self.unmatched, "unmatched")
        return frame[~mask]

    def _account(self, frame, mask, reason, counter: Counter, outcome: str) -> None:
        if not mask.any():
            return
        reasons = (reason[mask] if isinstance(reason, pd.Series) else pd.Series(reason, index=frame.index[mask]))
        counter.update(reasons.value_counts().to_dict())
        self.left_out.append(frame[mask].assign(outcome=outcome, reason=reasons))

    def done(self, tables: dict[str, pd.DataFrame], matched: int) -> Converted:
        columns = ["source_file", "source_row", "outcome", "reason"]
        if self.left_out:
            aside = pd.concat(self.left_out, ignore_index=True)
            rest = [c for c in aside.columns if c not in columns and c != "customer_id"]
            aside = aside[columns + rest].sort_values(["source_file", "source_row"], kind="stable")
        else:
            aside = pd.DataFrame(columns=columns)
        return Converted(tables, self.records, matched, self.unmatched, self.skipped, aside.reset_index(drop=True))
