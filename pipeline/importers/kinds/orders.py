"""Orders exported by a shop (Shopify's orders CSV): one row per line item, the order's own
fields on its first row only. -> transactions (and customers, when none are given).

- An order counts as a purchase only when `values.financial_status` maps its status to
  `purchase` (paid, partially or wholly refunded later); anything else (pending, authorized,
  voided, expired) is skipped with its status as the reason.
- Its moment is `paid_at`, or `created_at` when the export leaves the payment time empty.
- A refunded amount becomes a second, negative transaction `<order>-refund`. The export
  gives no refund date: it is dated `refunded_at` when the mapping has one, else at the
  order's cancellation, else at the payment (the only moments the export states).
- Without a customers table the shop's customers are created from the orders' emails: the
  id is a hash of the email (the same on every import), the first order's billing name and
  country are kept.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from pipeline.importers.kinds.ledger import Converted, Ledger
from pipeline.importers.linking import Customers
from pipeline.importers.mapping import SourceMapping
from pipeline.importers.values import Problems, first_present, mapped_values

PURCHASE = "purchase"
REFUND_SUFFIX = "-refund"

# The fields a mapping of this kind must have (their columns may still be optional).
NEEDS = ("order_id", "email", "financial_status", "total", "paid_at")


def convert(records: pd.DataFrame, mapping: SourceMapping, customers: Customers | None,
            problems: Problems) -> Converted:
    lines = records[records["order_id"].notna()]
    heads = order_rows(lines, mapping, problems)
    orders = one_row_per_order(lines)
    ledger = Ledger(records=len(orders) + int(heads["order_id"].duplicated().sum()))
    ledger.skip(records, records["order_id"].isna(), "no order id")
    ledger.skip(heads, heads["order_id"].duplicated(), "the same order again (an export given twice)")
    meaning = mapped_values(orders, "financial_status", mapping, problems)
    check_amounts(orders, mapping, problems)
    problems.raise_if_any(mapping)
    orders = ledger.skip(orders, meaning.ne(PURCHASE), "not paid: financial status "
                         + orders["financial_status"].fillna("(empty)").astype(str).str.lower())
    orders = orders.assign(purchased_at=first_present(orders, "paid_at", "created_at"))
    orders = ledger.skip(orders, orders["purchased_at"].isna(), "paid, but no payment or creation time")
    orders = ledger.skip(orders, orders["total"].fillna(0).eq(0), "zero total (a free order)")
    if customers is None:
        orders = ledger.set_unmatched(orders, orders["email"].isna(), "no email to identify the customer")
        orders = orders.assign(customer_id=orders["email"].map(customer_id_of_email))
        tables = {"customers": shop_customers(orders)}
    else:
        orders = ledger.link(orders, mapping, customers)
        tables = {}
    tables["transactions"] = transactions(orders)
    return ledger.done(tables, matched=len(orders))


def order_rows(lines: pd.DataFrame, mapping: SourceMapping, problems: Problems) -> pd.DataFrame:
    """The rows that carry an order's own fields (its first line, with the financial status).
    An order number on two such rows is the same order given twice when the rows agree (two
    copies of one export: counted, read once), and a problem when they differ: two exports
    from different days (the later one knows a refund the earlier does not) or two stores
    with the same numbers, which must not be merged into one order."""
    heads = lines[lines["financial_status"].notna()]
    fields = [c for c in heads.columns if c not in ("source_file", "source_row")]
    repeated = heads[heads["order_id"].duplicated(keep=False)]
    differing = repeated.groupby("order_id")[fields].nunique(dropna=False).gt(1).any(axis=1)
    clash = repeated["order_id"].isin(differing.index[differing]) & repeated["order_id"].duplicated(keep="first")
    problems.add(repeated, clash, f"{mapping.fields['order_id'].column[0]!r} (field order_id)", "one order number "
                 "with two different order rows (exports of different days, or two stores: import only the latest "
                 "export, and each store as its own source)", repeated["order_id"])
    return heads


def check_amounts(orders: pd.DataFrame, mapping: SourceMapping, problems: Problems) -> None:
    """A total and a refunded amount are never negative, and no more is refunded than paid."""
    total, refunded = orders["total"], orders.get("refunded", pd.Series(0.0, index=orders.index)).fillna(0)
    label = f"{mapping.fields['total'].column[0]!r} (field total)"
    problems.add(orders, total.lt(0).fillna(False), label, "a negative order total", total)
    if "refunded" in orders:
        label = f"{mapping.fields['refunded'].column[0]!r} (field refunded)"
        problems.add(orders, refunded.lt(0), label, "a negative refunded amount", orders["refunded"])
        paid = total.fillna(0).clip(lower=0)  # a negative total is its own problem
        problems.add(orders, refunded.gt(paid + 0.005), label, "more refunded than the order's total",
                     orders["refunded"])


def one_row_per_order(lines: pd.DataFrame) -> pd.DataFrame:
    """Each order once: for every field the first value its line items give (the order's
    fields are on its first line; `first` skips the empty ones), placed at its first line."""
    fields = [c for c in lines.columns if c != "order_id"]
    orders = lines.groupby("order_id", sort=False)[fields].first().reset_index()
    return orders.sort_values(["source_file", "source_row"], kind="stable").reset_index(drop=True)



def customer_id_of_email(email: str) -> str:
    """A stable customer id for a shop customer known only by email (no address in the id)."""
    return "shop-" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:16]


def transactions(orders: pd.DataFrame) -> pd.DataFrame:
    purchases = pd.DataFrame({
        "transaction_id": orders["order_id"],
        "customer_id": orders["customer_id"],
        "purchased_at": orders["purchased_at"],
        "amount": orders["total"],
        "category": orders.get("category"),
        "discount_amount": orders.get("discount"),
        "sales_channel": orders.get("sales_channel"),
    })
    refunded = orders.get("refunded", pd.Series(0.0, index=orders.index)).fillna(0) > 0
    refunds = pd.DataFrame({
        "transaction_id": orders["order_id"] + REFUND_SUFFIX,
        "customer_id": orders["customer_id"],
        "purchased_at": first_present(orders, "refunded_at", "cancelled_at", "purchased_at"),
        "amount": -orders.get("refunded", pd.Series(0.0, index=orders.index)),
        "category": orders.get("category"),
        "discount_amount": None,
        "sales_channel": orders.get("sales_channel"),
    })[refunded]
    out = pd.concat([purchases, refunds], ignore_index=True)
    return out.sort_values(["purchased_at", "transaction_id"], kind="stable").reset_index(drop=True)


def shop_customers(orders: pd.DataFrame) -> pd.DataFrame:
    """One row per customer the orders name, with what their first order says about them."""
    first = orders.sort_values(["purchased_at", "source_file", "source_row"], kind="stable")
    first = first.drop_duplicates("customer_id")
    return pd.DataFrame({
        "customer_id": first["customer_id"],
        "signup_at": None,
        "country": first.get("billing_country"),
        "acquisition_channel": None,
        "is_loyalty_member": None,
        "email": first["email"],
        "name": first.get("billing_name"),
    }).sort_values("customer_id").reset_index(drop=True)
