"""The reason checker reads reason texts back and catches any that disagree with the
customer's features, point the safe way, or cannot be read, whoever wrote them."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from features.catalog import feature_catalog
from models import reason_families
from models.reason_check import PATTERNS, count_contradictions, find_contradictions
from models.reasons import top_reasons
from pipeline.config import FeaturesConfig
from tests.models.test_reason_families import POPULATION, RISKY, customer


@pytest.mark.parametrize(("changes", "text"), [
    # numbers that are not the customer's
    ({"days_since_last_purchase": 94.0, "mean_days_between_purchases": 21.0}, "no purchase for 95 days (usually every 21)"),
    ({"days_since_last_purchase": 94.0, "mean_days_between_purchases": 21.0}, "no purchase for 94 days (usually every 20)"),
    ({"engagement_trend": 0.4}, "engagement trend falling (index 0.5 where 1 is steady)"),
    ({"nps_last": 3.0, "nps_class": "detractor"}, "NPS 4 (detractor)"),
    ({"nps_last": 8.0, "nps_class": "passive"}, "NPS 8 (detractor)"),
    ({"open_tickets": 2.0, "days_oldest_open_ticket": 12.0}, "2 support ticket(s) open (oldest for 11 days)"),
    ({"days_since_last_interaction": 45.0}, "no interaction on any channel for 45 days (typical customer: 10)"),
    ({"revenue_90d": 40.0, "revenue_total": 1240.0}, "spent 40 in the last 90 days (down from 300 per 90 days before)"),
    ({"revenue_90d": 40.0, "revenue_total": 1240.0}, "spent 40 in the last 30 days (down from 348 per 30 days before)"),
    # true numbers that point the safe way
    ({"days_since_last_purchase": 9.0, "mean_days_between_purchases": 86.0}, "no purchase for 9 days (usually every 86)"),
    ({"engagement_trend": 6.0}, "engagement trend falling (index 6.0 where 1 is steady)"),
    ({}, "NPS 10 (promoter)"),
    ({"nps_last": 9.0}, "NPS 9 (promoter)"),
    ({}, "last support satisfaction 5/5 (satisfied is 4 or more)"),
    ({"csat_last": 3.0}, "last support satisfaction 3/5 (satisfied is 3 or more)"),  # a moved bar
    ({}, "0 support ticket(s) open (oldest for 0 days)"),
    ({}, "0 refund(s) or return(s)"),
    ({}, "not a loyalty-programme member"),
    ({}, "spent 300 in the last 90 days (typical customer: 200)"),
    # words the checker cannot read (the wordings before the rules, and anything else)
    ({"engagement_trend": 0.4}, "engagement falling (0.4x the previous period)"),
    ({"days_since_last_purchase": 94.0}, "no purchase for 94 days"),
    ({}, "spent 300 in the last 90 days (1200 in all)"),
    ({}, "a loyal customer"),
])
def test_a_text_that_disagrees_with_the_features_is_a_contradiction(changes, text):
    assert count_contradictions([text], customer(**changes), POPULATION) == 1


def test_contradictions_are_reported_per_reason_with_their_row_and_family():
    rows = pd.concat([customer(nps_last=3.0, nps_class="detractor"), customer(engagement_trend=0.4)],
                     ignore_index=True)
    texts = ["NPS 3 (detractor); NPS 10 (promoter)", "engagement falling (0.4x the previous period)"]
    found = find_contradictions(texts, rows, POPULATION)
    assert found.to_dict("records") == [
        {"row": 0, "reason": "NPS 10 (promoter)", "family": "nps"},
        {"row": 1, "reason": "engagement falling (0.4x the previous period)", "family": None},
    ]
    assert count_contradictions(["", "engagement trend falling (index 0.4 where 1 is steady)"], rows, POPULATION) == 0


def test_rows_are_matched_by_position_whatever_their_index():
    rows = pd.concat([customer(nps_last=3.0, nps_class="detractor"), customer()]).set_axis([17, 4])
    assert count_contradictions(["NPS 3 (detractor)", ""], rows, POPULATION) == 0
    assert count_contradictions(["", "NPS 3 (detractor)"], rows, POPULATION) == 1


def test_a_reason_about_features_the_frame_lacks_is_a_contradiction():
    rows = customer().drop(columns=["nps_last", "nps_class"])
    assert count_contradictions(["NPS 3 (detractor)"], rows, POPULATION) == 1


def test_every_risky_wording_of_the_writers_has_a_pattern():
    for _, _, text in RISKY:
        assert sum(bool(pattern.words.fullmatch(text)) for pattern in PATTERNS) == 1, text


def test_the_checker_catches_a_writers_bug_because_it_reads_the_words(monkeypatch):
    """A writer that says 'falling' for any trend (the bug this checker was built for) is
    caught on the list top_reasons makes, though the writer is not asked anything."""
    def any_trend(f, population):
        return "engagement trend falling (index " + f["engagement_trend"].round(1).map("{:.1f}".format) + " where 1 is steady)"

    engagement = reason_families.FAMILIES["engagement"]
    monkeypatch.setitem(reason_families.FAMILIES, "engagement", dataclasses.replace(engagement, text=any_trend))
    rows = pd.concat([customer(engagement_trend=0.4), customer(engagement_trend=6.0)], ignore_index=True)
    contributions = pd.DataFrame({"engagement_trend": [0.5, 0.5]})
    texts, _ = top_reasons(rows, contributions, feature_catalog(FeaturesConfig()), 3, population=POPULATION)
    assert texts == ["engagement trend falling (index 0.4 where 1 is steady)", "engagement trend falling (index 6.0 where 1 is steady)"]
    assert find_contradictions(texts, rows, POPULATION)["row"].tolist() == [1]
