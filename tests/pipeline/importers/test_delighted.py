"""Delighted's responses CSV -> surveys: linked by the Customer ID property, else by email;
an empty score skipped, a score off the 0-10 scale refused. The expected figures are worked
out by hand from samples/delighted/ and the HubSpot contacts they link to."""

from __future__ import annotations

import pytest

from pipeline.errors import DataError
from tests.pipeline.importers.crm_samples import SAMPLES, import_hubspot_contacts, import_source, read_table, set_aside

RESPONSES = SAMPLES / "delighted" / "delighted-data_05-April-2024.csv"
HEADER = ("Response ID,Name,Email,Score,Comment,Response Timestamp,Notes,Tags,Customer ID,Order,Delighted Source,"
          "Delighted Country\n")


def test_responses_become_surveys_of_the_customers_they_name(tmp_path):
    import_hubspot_contacts(tmp_path)
    report = import_source("delighted", [RESPONSES], tmp_path)

    surveys = read_table(tmp_path / "surveys.csv")
    assert surveys.values.tolist() == [
        ["51234567801", "2024-03-10 14:05:12", "9"],  # 15:05:12 +0100
        ["51234567802", "2024-03-31 01:10:00", "7"],  # 03:10:00 +0200, just after the spring switch
        ["51234567803", "2024-03-11 14:05:12", "4"],  # Marc.Roux@Example.fr; a comment over two lines
        ["51234567806", "2024-03-20 07:00:00", "10"],  # an SMS answer: no email, its Customer ID property
    ]
    assert report["rows_read"] == 7 and report["records"] == 7
    assert report["matched"] == 4 and report["written"] == {"surveys": 4}
    assert report["skipped_by_reason"] == {"no score (the survey was not answered)": 1}
    assert report["unmatched"] == 2 and report["unmatched_by_reason"] == {
        "email not in customers": 1, "email shared by several customers": 1}
    aside = set_aside(tmp_path, "delighted")
    assert aside[["source_row", "outcome", "email"]].values.tolist() == [
        ["5", "unmatched", "shared@example.de"], ["6", "unmatched", "visitor@example.com"],
        ["7", "skipped", "jan.kowalski@example.pl"]]


def test_a_score_off_the_nps_scale_stops_the_import_before_anything_is_written(tmp_path):
    import_hubspot_contacts(tmp_path)
    export = tmp_path / "delighted-data_06-April-2024.csv"
    export.write_text(HEADER
                      + "7401,Anna Berg,anna.berg@example.com,9,,2024-04-01 10:00:00 +0200,,,,,Email,DE\n"
                      + "7402,Marc Roux,marc.roux@example.fr,11,,2024-04-02 10:00:00 +0200,,,,,Email,FR\n"
                      + "7403,,t.nguyen@example.org,-1,,2024-04-03 10:00:00 +0200,,,,,Web,DE\n", encoding="utf-8")

    with pytest.raises(DataError) as raised:
        import_source("delighted", [export], tmp_path)

    message = str(raised.value)
    assert "'Score' (field score) [an NPS score must be 0-10]: 2 row(s)" in message
    assert f"{export.name} row 2: '11'; {export.name} row 3: '-1'" in message
    assert not (tmp_path / "surveys.csv").exists()
