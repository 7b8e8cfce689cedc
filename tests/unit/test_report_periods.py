"""Report periods (healthops.reports.periods): days, ISO weeks and months, the
revision window of each, and which period a nightly run's day publishes."""

from __future__ import annotations

from datetime import date

import pytest

from healthops.reports.periods import (
    Week,
    is_history,
    later_periods_to_check,
    live_period,
    period_of,
    periods_to_check,
)


def test_iso_weeks_and_their_keys():
    assert Week.parse("2026-11-01").key == "2026-W44" and Week.parse("2026-W44").first == date(2026, 10, 26)
    assert Week.parse(date(2026, 10, 26)) == Week.parse("2026-w44") and Week.parse("2026-W44").last == date(2026, 11, 1)
    # the ISO week-numbering year: the last days of December may be week 53, the first of January week 53 too
    assert Week.parse("2026-12-31").key == "2026-W53" and Week.parse("2027-01-03").key == "2026-W53"
    assert Week.parse("2027-W01").first == date(2027, 1, 4) and Week.parse("2026-W53").shift(1).key == "2027-W01"
    assert Week.parse("2026-W44").label == "Week 44, Oct 26 – Nov 1, 2026"
    assert Week.parse("2026-W46").label == "Week 46, Nov 9 – 15, 2026"
    assert Week.parse("2026-W53").label == "Week 53, Dec 28, 2026 – Jan 3, 2027"
    assert len(Week.parse("2026-W10").days) == 7
    assert Week.parse("2026-W09").key < Week.parse("2026-W10").key < Week.parse("2027-W01").key
    with pytest.raises(ValueError, match="YYYY-Www"):
        Week.parse("week 44")


def test_a_nightly_run_publishes_a_week_on_its_sunday_only():
    assert period_of("week", "2026-11-01") == "2026-W44" and period_of("week", date(2026, 11, 1)) == "2026-W44"
    assert [period_of("week", f"2026-10-{d}") for d in range(26, 32)] == [None] * 6
    assert period_of("week", "2026-W44") == "2026-W44"  # a key given by hand
    assert period_of("day", "2026-10-31") == "2026-10-31" and period_of("month", "2026-10") == "2026-10"


def test_revision_windows_of_each_period():
    assert periods_to_check("week", {}, "2026-W44") == ["2026-W44", "2026-W43"]
    assert periods_to_check("week", {"revise_weeks": 2}, "2026-W01") == ["2026-W01", "2025-W52", "2025-W51"]
    assert later_periods_to_check("week", {}, "2026-W53") == ["2027-W01"]
    assert live_period("week", date(2026, 11, 2)) == "2026-W44"  # Monday: the week that just ended
    assert not is_history("week", {}, "2026-W43", date(2026, 11, 2))
    assert is_history("week", {}, "2026-W42", date(2026, 11, 2))
    assert not is_history("week", {}, "2026-11-01", date(2026, 11, 2))  # a day stands for its week
    # days and months as before
    assert periods_to_check("day", {"revise_days": 2}, "2026-11-10") == ["2026-11-10", "2026-11-09", "2026-11-08"]
    assert periods_to_check("month", {}, "2026-01") == ["2026-01", "2025-12"]
    assert (
        live_period("day", date(2026, 11, 2)) == "2026-11-01" and live_period("month", date(2026, 11, 2)) == "2026-10"
    )
    assert is_history("day", {}, "2026-10-24", date(2026, 11, 2)) and not is_history(
        "day", {}, "2026-10-25", date(2026, 11, 2)
    )
