"""A contract data folder (the demo world's) written back out as the exports of the systems a
retention team runs, in each tool's documented format: HubSpot contacts CSV, Shopify orders
CSV (line items, store-time offsets, refunds on the order without a date), Zendesk's
incremental API JSON, HubSpot email events JSON, GA4's BigQuery NDJSON and Delighted's CSV.

Importing these must give back the world (tests/pipeline/importers/test_round_trip.py), and
the Shopify writer makes the 1M-order export of the import benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

STORE_ZONE = "Europe/Berlin"  # the shop's time zone: Shopify writes each time with its offset
SHOPIFY_COLUMNS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at", "Accepts Marketing",
    "Currency", "Subtotal", "Shipping", "Taxes", "Total", "Discount Code", "Discount Amount", "Shipping Method",
    "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku", "Billing Name",
    "Billing Country", "Cancelled at", "Payment Method", "Refunded Amount", "Vendor", "Id", "Tags", "Risk Level",
    "Source",
]
ORDER_ONLY = ["Financial Status", "Paid at", "Fulfillment Status", "Accepts Marketing", "Currency", "Subtotal",
              "Shipping", "Taxes", "Total", "Discount Amount", "Billing Name", "Billing Country", "Payment Method",
              "Refunded Amount", "Id", "Risk Level", "Source"]


def read_world(folder: Path) -> dict[str, pd.DataFrame]:
    times = {"customers": ["signup_at"], "transactions": ["purchased_at"], "interactions": ["occurred_at"],
             "support_tickets": ["opened_at", "resolved_at"], "surveys": ["responded_at"]}
    return {name: pd.read_csv(folder / f"{name}.csv", parse_dates=cols, dtype={"customer_id": str})
            for name, cols in times.items() if (folder / f"{name}.csv").is_file()}


def _store_time(moments: pd.Series) -> pd.Series:
    """UTC moments as Shopify writes them: store time with its offset, 2024-03-10 14:05:00 +0100."""
    local = moments.dt.tz_localize("UTC").dt.tz_convert(STORE_ZONE)
    return local.dt.strftime("%Y-%m-%d %H:%M:%S %z").where(moments.notna(), "")


def _money(values) -> pd.Series:
    return pd.Series(values).map(lambda v: f"{v:.2f}")


def shopify_orders(customers: pd.DataFrame, transactions: pd.DataFrame, seed: int = 0,
                   unpaid_share: float = 0.03) -> pd.DataFrame:
    """One order per purchase (amount > 0), each refund added to the customer's latest earlier
    order as its Refunded Amount, some unpaid orders (pending, voided) besides; one to three
    line items per order, the order's fields on its first line only."""
    rng = np.random.default_rng(seed)
    emails = customers.set_index("customer_id")["email"]
    names = customers.set_index("customer_id")["name"] if "name" in customers else None
    countries = customers.set_index("customer_id")["country"]
    purchases = transactions[transactions["amount"] > 0].sort_values(["purchased_at", "transaction_id"])
    orders = pd.DataFrame({
        "customer_id": purchases["customer_id"].to_numpy(),
        "paid_at": purchases["purchased_at"].to_numpy(),
        "total": purchases["amount"].to_numpy(),
        "discount": purchases["discount_amount"].fillna(0).to_numpy(),
        "source": purchases["sales_channel"].fillna("web").replace({"store": "pos"}).to_numpy(),
        "status": "paid",
        "refunded": 0.0,
    })
    orders = _with_refunds(orders, transactions[transactions["amount"] < 0])
    unpaid = orders.sample(frac=unpaid_share, random_state=seed).assign(
        status=lambda o: rng.choice(["pending", "voided", "authorized"], len(o)), refunded=0.0)
    orders = pd.concat([orders, unpaid], ignore_index=True).sort_values("paid_at", kind="stable").reset_index(drop=True)
    orders["name"] = "#" + pd.Series(np.arange(1001, 1001 + len(orders)), index=orders.index).astype(str)
    orders["id"] = (5_012_345_678_901 + np.arange(len(orders))).astype(str)
    lines = rng.integers(1, 4, len(orders))
    return _line_rows(orders, lines, emails, names, countries, rng)


def _with_refunds(orders: pd.DataFrame, refunds: pd.DataFrame) -> pd.DataFrame:
    """Each refund onto the customer's latest order before it (Shopify keeps no refund date)."""
    if refunds.empty:
        return orders
    orders = orders.sort_values("paid_at", kind="stable").reset_index(drop=True)
    keyed = orders.reset_index().rename(columns={"index": "order"})[["order", "customer_id", "paid_at"]]
    found = pd.merge_asof(refunds.sort_values("purchased_at")[["customer_id", "purchased_at", "amount"]],
                          keyed.sort_values("paid_at"), left_on="purchased_at", right_on="paid_at",
                          by="customer_id", direction="backward").dropna(subset=["order"])
    refunded = found.groupby("order")["amount"].sum().abs()
    orders.loc[refunded.index.astype(int), "refunded"] = np.minimum(
        refunded.to_numpy(), orders.loc[refunded.index.astype(int), "total"].to_numpy())
    whole = orders["refunded"].round(2) >= orders["total"].round(2)
    orders.loc[orders["refunded"] > 0, "status"] = "partially_refunded"
    orders.loc[whole & (orders["refunded"] > 0), "status"] = "refunded"
    return orders


def _line_rows(orders, lines, emails, names, countries, rng) -> pd.DataFrame:
    first = pd.DataFrame({
        "Name": orders["name"],
        "Email": orders["customer_id"].map(emails),
        "Financial Status": orders["status"],
        "Paid at": _store_time(orders["paid_at"].where(orders["status"].isin(
            ["paid", "partially_refunded", "refunded"]))),
        "Fulfillment Status": "fulfilled",
        "Fulfilled at": "",
        "Accepts Marketing": "no",
        "Currency": "EUR",
        "Subtotal": _money(orders["total"]),
        "Shipping": "0.00",
        "Taxes": "0.00",
        "Total": _money(orders["total"]),
        "Discount Code": "",
        "Discount Amount": _money(orders["discount"]),
        "Shipping Method": "Standard",
        "Created at": _store_time(orders["paid_at"] - pd.Timedelta(seconds=30)),
        "Billing Name": orders["customer_id"].map(names) if names is not None else "",
        "Billing Country": orders["customer_id"].map(countries),
        "Cancelled at": "",
        "Payment Method": "Shopify Payments",
        "Refunded Amount": _money(orders["refunded"]),
        "Id": orders["id"],
        "Risk Level": "Low",
        "Source": orders["source"],
    })
    repeat = np.repeat(np.arange(len(orders)), lines)
    rows = first.iloc[repeat].reset_index(drop=True)
    position = rows.groupby("Name").cumcount().to_numpy()
    later = position > 0
    for column in ORDER_ONLY:  # the order's own fields are on its first line only
        rows.loc[later, column] = ""
    rows["Lineitem quantity"] = "1"
    rows["Lineitem name"] = "Item " + pd.Series(position + 1).astype(str)
    rows["Lineitem price"] = (orders["total"].to_numpy()[repeat] / lines[repeat]).round(2)
    rows["Lineitem sku"] = "SKU-" + pd.Series(position + 1).astype(str)
    rows["Vendor"] = "Demo"
    rows["Tags"] = ""
    return rows[SHOPIFY_COLUMNS]


def write_shopify_csv(rows: pd.DataFrame, path: Path, german_excel: bool = False) -> Path:
    """orders_export.csv as Shopify writes it, or as a German Excel saves it again: `;`,
    decimal comma, Windows-1252, and the 13-digit Id shown in scientific notation."""
    if german_excel:
        rows = rows.copy()
        for column in ("Subtotal", "Shipping", "Taxes", "Total", "Discount Amount", "Refunded Amount",
                       "Lineitem price"):
            rows[column] = rows[column].astype(str).str.replace(".", ",", regex=False)
        rows["Id"] = rows["Id"].map(lambda v: f"{float(v):.5E}".replace(".", ",").replace("E+", "E+") if v else "")
        rows.to_csv(path, index=False, sep=";", encoding="cp1252", lineterminator="\r\n", errors="replace")
    else:
        rows.to_csv(path, index=False, lineterminator="\n")
    return path


def write_hubspot_contacts(customers: pd.DataFrame, path: Path) -> Path:
    """The contacts export: Record ID (the customer id), names, email, create date (to the
    minute, in the account's zone: UTC here), country, original source, lifecycle stage."""
    names = customers.get("name", pd.Series("", index=customers.index)).fillna("")
    split = names.str.rsplit(" ", n=1, expand=True).reindex(columns=[0, 1]).fillna("")
    frame = pd.DataFrame({
        "Record ID": customers["customer_id"],
        "First Name": split[0],
        "Last Name": split[1],
        "Email": customers["email"],
        "Phone Number": "",
        "Lifecycle Stage": "Customer",
        "Original Source": customers["acquisition_channel"].fillna("").str.replace("_", " ").str.title(),
        "Create Date": customers["signup_at"].dt.strftime("%Y-%m-%d %H:%M").fillna(""),
        "Country/Region": customers["country"].fillna(""),
    })
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def write_zendesk_json(tickets: pd.DataFrame, customers: pd.DataFrame, path: Path) -> Path:
    """One incremental export page: tickets with their embedded metric set, users side-loaded."""
    user_ids = {cid: 372_900_000_000 + i for i, cid in enumerate(customers["customer_id"])}
    iso = lambda t: None if pd.isna(t) else t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    satisfaction = {5: "good", 4: "good", 3: "offered", 2: "bad", 1: "bad"}
    records = []
    for number, row in enumerate(tickets.itertuples(index=False), start=1):
        solved = not pd.isna(row.resolved_at)
        records.append({
            "id": number, "created_at": iso(row.opened_at), "updated_at": iso(row.resolved_at if solved else row.opened_at),
            "status": "solved" if solved else "open", "priority": row.priority if isinstance(row.priority, str) else None,
            "type": row.category if isinstance(row.category, str) else None,
            "requester_id": user_ids[row.customer_id],
            "satisfaction_rating": {"score": satisfaction.get(int(row.satisfaction), "unoffered")
                                    if not pd.isna(row.satisfaction) else "unoffered"},
            "metric_set": {"ticket_id": number, "solved_at": iso(row.resolved_at)},
        })
    users = [{"id": uid, "email": email, "external_id": cid, "role": "end-user"}
             for (cid, uid), email in zip(user_ids.items(), customers["email"], strict=True)]
    page = {"tickets": records, "users": users, "after_cursor": None, "end_of_stream": True}
    path.write_text(json.dumps(page), encoding="utf-8")
    return path


def write_hubspot_email_events(interactions: pd.DataFrame, customers: pd.DataFrame, path: Path) -> Path:
    """The email events API page: each open and click, with a delivery before it."""
    emails = customers.set_index("customer_id")["email"]
    email = interactions[interactions["channel"] == "email"]
    created = (email["occurred_at"].astype("int64") // 1_000_000).to_numpy()
    events = []
    for number, (cid, kind, ms) in enumerate(zip(email["customer_id"], email["event_type"], created, strict=True)):
        recipient = emails[cid]
        events.append({"id": f"d{number}", "created": int(ms) - 60_000, "type": "DELIVERED", "recipient": recipient,
                       "filteredEvent": False})
        events.append({"id": f"e{number}", "created": int(ms), "type": str(kind).upper(), "recipient": recipient,
                       "filteredEvent": False})
    path.write_text(json.dumps({"events": events, "hasMore": False, "offset": "end"}), encoding="utf-8")
    return path


def write_ga4_ndjson(interactions: pd.DataFrame, path: Path) -> Path:
    """BigQuery's NDJSON of the web and app events, signed in (INT64 written as strings)."""
    web = interactions[interactions["channel"].isin(["web", "app"])]
    micros = (web["occurred_at"].astype("int64") // 1_000).to_numpy()
    with path.open("w", encoding="utf-8") as handle:
        for cid, channel, kind, us in zip(web["customer_id"], web["channel"], web["event_type"], micros, strict=True):
            handle.write(json.dumps({
                "event_date": pd.Timestamp(int(us), unit="us").strftime("%Y%m%d"), "event_timestamp": str(int(us)),
                "event_name": str(kind), "user_id": cid, "user_pseudo_id": f"{cid}.device",
                "platform": "WEB" if channel == "web" else "IOS"}) + "\n")
    return path


def write_delighted_csv(surveys: pd.DataFrame, customers: pd.DataFrame, path: Path) -> Path:
    emails = customers.set_index("customer_id")["email"]
    frame = pd.DataFrame({
        "Response ID": np.arange(1, len(surveys) + 1),
        "Email": surveys["customer_id"].map(emails),
        "Score": surveys["nps_score"],
        "Comment": "",
        "Response Timestamp": surveys["responded_at"].dt.strftime("%Y-%m-%d %H:%M:%S +0000"),
    })
    frame.to_csv(path, index=False, lineterminator="\n")
    return path
