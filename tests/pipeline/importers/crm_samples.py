"""The hand-made CRM, marketing, analytics and survey exports under samples/, and the step the
tests of their events start from: HubSpot's contacts imported into a data folder, so that
email, web and survey events link to those customers (Record IDs 51234567801-808)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.importers import run_import
from pipeline.importers.mapping import load_mapping, mapping_path

SAMPLES = Path(__file__).parent / "samples"
CONTACTS = SAMPLES / "hubspot-contacts" / "hubspot-crm-exports-all-contacts-2024-04-05.csv"
EMAIL_PAGES = [SAMPLES / "hubspot-email-events" / f"email-events-page-{page}.json" for page in (1, 2)]
GA4_EVENTS = SAMPLES / "ga4" / "events_20240310-000000000000.json"


def import_source(source: str, files: list[Path], out_dir: Path, customers: Path | None = None) -> dict:
    """`churn import SOURCE FILE... --out out_dir` with the built-in mapping; the report."""
    return run_import(load_mapping(mapping_path(source)), files, out_dir, customers)


def import_hubspot_contacts(out_dir: Path) -> dict:
    return import_source("hubspot-contacts", [CONTACTS], out_dir)


def read_table(path: Path) -> pd.DataFrame:
    """A written table as its text (empty cells as empty strings), as a reader would see it."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def set_aside(out_dir: Path, source: str) -> pd.DataFrame:
    return read_table(out_dir / "imports" / source / "set_aside.csv")
