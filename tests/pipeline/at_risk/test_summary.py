"""summary.html: amounts with their currency, reasons in plain words (never a template), and a
score-distribution chart a marketer can read; parsed as HTML, and rendered in Chromium."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.at_risk.summary import common_reasons, distribution_figure, probability_bands, render_summary

AS_OF = dt.date(2026, 1, 1)
EDGES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
REFERENCE = {"edges": EDGES, "shares": [0.1] * 10 + [0.0]}  # a tenth per band at training, none missing


def scored() -> pd.DataFrame:
    reasons = [
        "no purchase for 45 days (usually every 12); NPS 3 (detractor)",
        "no purchase for 210 days (usually every 60); spent -20 in the last 90 days",
        "no purchase for 94 days (usually every 21); NPS 3 (detractor)",
        "spent 1200 in the last 90 days",
        "purchase trend falling (index 0.6 where 1 is steady)",
        "", "",
    ]
    return pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(len(reasons))],
        "churn_probability": [0.95, 0.91, 0.85, 0.55, 0.35, 0.05, 0.15],
        "risk_tier": ["high", "high", "high", "high", "medium", "low", "low"],
        "value_at_risk": [1500.0, 250.5, 80.0, 40.0, 10.0, 0.5, 1.0],
        "segment": ["loyal", "loyal", "at risk", "champions", "lost", "new", "new"],
        "top_reasons": reasons,
    })


def manifest(frame: pd.DataFrame, currency: str = "CHF") -> dict:
    return {
        "customers_scored": len(frame),
        "customers_per_tier": {t: int((frame["risk_tier"] == t).sum()) for t in ("high", "medium", "low")},
        "total_value_at_risk": round(float(frame["value_at_risk"].sum()), 2),
        "currency": currency, "warnings": ["churn_probability has shifted since training"],
        "models": {"churn": {"version": "3"}, "clv": {"version": "4"}},
    }


class Page(HTMLParser):
    """The text a reader sees (style sheets left out), the images with their alt text, the
    captions and the table cells."""

    def __init__(self, page: str):
        super().__init__()
        self.text, self.images, self.captions, self.cells, self.headings = [], [], [], [], []
        self._in: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        else:
            self._in.append(tag)

    def handle_endtag(self, tag):
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag)]

    def handle_data(self, data):
        if "style" in self._in:
            return
        self.text.append(data)
        where = self._in[-1] if self._in else ""
        {"figcaption": self.captions, "td": self.cells, "h2": self.headings}.get(where, []).append(data)


def test_alike_reasons_count_together_shown_with_the_range_of_their_numbers():
    reasons = common_reasons(scored())
    assert reasons.to_dict() == {
        "no purchase for 45–210 days (usually every 12–60)": 3,
        "NPS 3 (detractor)": 2,
        "spent -20–1200 in the last 90 days": 2,
        "purchase trend falling (index 0.6 where 1 is steady)": 1,
    }
    assert common_reasons(scored()[scored()["top_reasons"] == ""]).empty


def test_the_page_says_amounts_with_their_currency_and_reasons_in_plain_words():
    frame = scored()
    page = Page(render_summary(frame, AS_OF, manifest(frame), REFERENCE))
    text = "".join(page.text)
    words = " ".join(text.split())
    assert "Value at risk (churn probability x predicted CLV, summed): 1,882 CHF" in words
    assert "7 active customers scored: 4 high, 1 medium and 2 low risk" in words  # every tier of the registry
    assert "Value at risk by segment and tier (CHF)" in page.headings
    assert page.cells and all(cell.endswith(" CHF") for cell in page.cells)
    assert "1,750 CHF" in page.cells  # loyal: 1,500 + 250.5
    assert "#" not in text and "\0" not in text and "a number" not in text  # no template text anywhere
    assert len(page.images) == 4 and all(img["src"].startswith("data:image/png;base64,") for img in page.images)
    assert [img["alt"] for img in page.images] == page.captions  # every chart said in words too
    tiers, segments, reasons, distribution = page.captions
    assert tiers == "Customers per risk tier: 4 high risk, 1 medium risk, 2 low risk."
    assert "in CHF: loyal 1,750 CHF; at risk 80 CHF" in segments
    assert "no purchase for 45–210 days (usually every 12–60): 3" in reasons
    assert distribution.startswith("Share of customers by churn probability, tonight against the customers of the "
                                   "model's freshest training cutoff")
    assert "A churn probability of 80% or more: 20% of customers at training, 43% tonight." in distribution
    assert "churn_probability has shifted since training" in text


def test_without_a_validation_reference_the_distribution_chart_is_left_out():
    frame = scored()
    page = Page(render_summary(frame, AS_OF, manifest(frame, "EUR"), None))
    assert len(page.images) == 3 and "Share of customers" not in "".join(page.text)
    assert "1,882 EUR" in "".join(page.text)


def test_the_distribution_chart_speaks_of_customers_and_probabilities_not_deciles():
    probability = scored()["churn_probability"].to_numpy()
    figure, then, now = distribution_figure(probability, REFERENCE)
    ax = figure.axes[0]
    assert ax.get_title() == "Share of customers by churn probability, tonight vs training"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("churn probability", "share of customers")
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "under 10%", "10–20%", "20–30%", "30–40%", "40–50%", "50–60%", "60–70%", "70–80%", "80–90%", "90% or more"]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["customers at training", "customers tonight"]
    np.testing.assert_allclose(then, 0.1)
    np.testing.assert_allclose(now * 7, [1, 1, 0, 1, 0, 1, 0, 0, 1, 2])
    figure.canvas.draw()
    ticks = [(tick, label.get_text()) for tick, label in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)]
    assert len(ticks) >= 3 and all(label == f"{round(100 * tick)}%" for tick, label in ticks)  # whole percentages


def test_band_names_keep_neighbouring_edges_apart_with_as_few_decimals_as_needed():
    assert probability_bands([0.012, 0.013, 0.5]) == ["under 1.2%", "1.2–1.3%", "1.3–50.0%", "50.0% or more"]
    assert probability_bands([0.25]) == ["under 25%", "25% or more"]
    assert probability_bands([]) == ["all customers"]


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium; "
                                                  "the headless rendering check needs it (`make browser`)")
def test_the_page_renders_in_headless_chromium(tmp_path):
    frame = scored()
    page = tmp_path / "summary.html"
    page.write_text(render_summary(frame, AS_OF, manifest(frame), REFERENCE), encoding="utf-8")
    browser = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}"]
    result = subprocess.run([*browser, "--dump-dom", page.resolve().as_uri()],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('<img src="data:image/png;base64,') == 4
    assert "At-risk customers as of 2026-01-01" in result.stdout and "1,882 CHF" in result.stdout
    shot = tmp_path / "summary.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1000,2600", page.resolve().as_uri()],
                   capture_output=True, timeout=60, check=False)
    assert shot.exists() and shot.stat().st_size > 10_000
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)
