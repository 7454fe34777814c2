"""Finding each imported row's customer: by the mapping's link rules, in order (an external
id, then an email), against the customers table.

A row is linked only when a rule names exactly one customer. A value that several customers
share (one email on two records) links no one, and a row whose customer cannot be identified
is set aside with the reason; it is never attached to a guess. Names are never compared: two
people may have the same one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.errors import DataError
from pipeline.importers.mapping import LinkRule, SourceMapping
from pipeline.importers.values import normalised_email

NOT_LINKED = "not linked"


@dataclass
class Customers:
    """The customers rows are linked to, read from a contract customers table."""

    frame: pd.DataFrame  # customer_id and the columns the link rules compare, as text
    path: Path

    def lookup(self, column: str, email: bool) -> tuple[dict[str, str], set[str]]:
        """value -> customer_id for values held by exactly one customer, and the values
        held by several."""
        values = self.frame[column]
        values = normalised_email(values) if email else values.astype("string").str.strip().astype(object)
        pairs = pd.DataFrame({"value": values, "customer_id": self.frame["customer_id"]}).dropna()
        pairs = pairs.drop_duplicates()
        owners = pairs.groupby("value")["customer_id"].nunique()
        shared = set(owners.index[owners > 1])
        unique = pairs[~pairs["value"].isin(shared)]
        return dict(zip(unique["value"], unique["customer_id"], strict=True)), shared


def customers_table(path: Path) -> Path | None:
    """The customers table at `path`: the file itself, or customers.csv/.parquet in a folder."""
    path = Path(path)
    if path.is_dir():
        return next((path / f"customers{s}" for s in (".parquet", ".csv") if (path / f"customers{s}").is_file()), None)
    return path if path.is_file() else None


def read_customers(path: Path, rules: list[LinkRule]) -> Customers:
    """The customers table at `path` with the columns the rules compare; a DataError when it
    lacks one of them."""
    file = customers_table(path)
    if file is None:
        raise DataError(f"No customers table at {path} (a customers.csv or customers.parquet file, or a folder "
                        "holding one) to link the rows to. Import the CRM's contacts first (`churn import "
                        "hubspot-contacts ...`), or pass --customers PATH to your customers table.")
    needed = sorted({"customer_id", *(rule.customers_column for rule in rules)})
    if file.suffix == ".parquet":
        frame = pd.read_parquet(file)
    else:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    absent = [c for c in needed if c not in frame.columns]
    if absent:
        raise DataError(f"customers table {file} lacks the column(s) {absent} that the mapping links by [missing "
                        f"column]; it has {list(frame.columns)[:12]}. Add the column, or change the mapping's `link`.")
    frame = frame[needed].astype("string").astype(object)
    return Customers(frame.where(frame.ne(""), None), file)


def link_customers(records: pd.DataFrame, mapping: SourceMapping, customers: Customers) -> tuple[pd.Series, pd.Series]:
    """(customer_id, reason): each record's customer by the first rule that names exactly
    one, else None and why not (the last rule's reason that had a value to compare)."""
    customer_id = pd.Series(None, index=records.index, dtype=object)
    reason = pd.Series(None, index=records.index, dtype=object)
    tried = pd.Series(False, index=records.index)
    for rule in mapping.link:
        if rule.field not in records:
            continue
        email = mapping.fields[rule.field].type == "email"
        owners, shared = customers.lookup(rule.customers_column, email)
        values = records[rule.field]
        open_ = customer_id.isna() & values.notna()
        keys = values.astype(str).str.strip()
        found = keys.map(owners)
        customer_id = customer_id.where(~(open_ & found.notna()), found)
        what = f"{rule.field} {'shared by several customers' if email else 'held by several customers'}"
        reason = reason.where(~(open_ & keys.isin(shared)), what)
        reason = reason.where(~(open_ & found.isna() & ~keys.isin(shared)), f"{rule.field} not in customers")
        tried |= values.notna()
    fields = " or ".join(rule.field for rule in mapping.link)
    reason = reason.where(tried, f"no {fields} to identify the customer")
    return customer_id, reason.where(customer_id.isna(), None)
