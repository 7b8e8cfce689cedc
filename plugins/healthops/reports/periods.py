"""Report periods, defined once: a day (key ``YYYY-MM-DD``), an ISO week (``YYYY-Www``,
``Week``: Monday to Sunday) or a month (``YYYY-MM``, ``Month``), which earlier periods
late data may still revise, and when a period is history (older than every period a
live run would send or revise).

A weekly report is published by the nightly run of the week's last day (Sunday):
``period_of("week", day)`` is the week a night's run reports, or None on the other
six nights (``healthops.reports.publish`` then has nothing to do)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

# How far back late data may revise a report already sent: the catalog's `revise_days`
# (days) for daily reports, `revise_weeks` for weekly ones, `revise_days` read as
# months for monthly ones (as before weeks existed).
DEFAULT_REVISE = {"day": 7, "week": 1, "month": 1}
REVISE_KEY = {"day": "revise_days", "week": "revise_weeks", "month": "revise_days"}


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month: ``first`` is its first day."""

    first: date

    @classmethod
    def parse(cls, value: "str | date | Month") -> "Month":
        if isinstance(value, Month):
            return value
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return cls(value.replace(day=1))
        text = str(value).strip()
        try:
            year, month = text.split("-")[:2]
            return cls(date(int(year), int(month), 1))
        except (ValueError, TypeError):
            raise ValueError(f"a month is YYYY-MM, got {value!r}") from None

    def shift(self, months: int) -> "Month":
        n = self.first.year * 12 + self.first.month - 1 + months
        return Month(date(n // 12, n % 12 + 1, 1))

    @property
    def last(self) -> date:
        return self.shift(1).first - timedelta(days=1)

    @property
    def days(self) -> list[date]:
        """Every date of the month."""
        return [self.first + timedelta(days=i) for i in range(self.day_count)]

    @property
    def day_count(self) -> int:
        return self.last.day

    @property
    def key(self) -> str:
        return f"{self.first:%Y-%m}"

    @property
    def label(self) -> str:
        return f"{self.first:%B %Y}"

    @property
    def short(self) -> str:
        return f"{self.first:%b %Y}"


@dataclass(frozen=True, order=True)
class Week:
    """An ISO 8601 week, Monday to Sunday: ``first`` is its Monday. Its key is
    ``YYYY-Www`` with the ISO week-numbering year (2026-12-28 is in 2026-W53;
    2027-01-03 too), so keys sort in date order."""

    first: date

    @classmethod
    def parse(cls, value: "str | date | Week") -> "Week":
        """A week from its key ``YYYY-Www``, or the week holding a date (or ISO date text)."""
        if isinstance(value, Week):
            return value
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return cls(value - timedelta(days=value.weekday()))
        text = str(value).strip()
        try:
            if "-W" in text.upper():
                year, week = text.upper().split("-W")
                return cls(date.fromisocalendar(int(year), int(week), 1))
            return cls.parse(date.fromisoformat(text))
        except (ValueError, TypeError):
            raise ValueError(f"a week is YYYY-Www (ISO 8601) or a date in it, got {value!r}") from None

    def shift(self, weeks: int) -> "Week":
        return Week(self.first + timedelta(weeks=weeks))

    @property
    def last(self) -> date:
        """Its Sunday."""
        return self.first + timedelta(days=6)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(7)]

    @property
    def key(self) -> str:
        year, week, _ = self.first.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def label(self) -> str:
        """``Week 45, Nov 2 – 8, 2026`` (``Dec 28, 2026 – Jan 3, 2027`` across a year)."""
        a, b = self.first, self.last
        _, week, _ = a.isocalendar()
        if a.year != b.year:
            span = f"{a:%b} {a.day}, {a.year} – {b:%b} {b.day}, {b.year}"
        elif a.month != b.month:
            span = f"{a:%b} {a.day} – {b:%b} {b.day}, {b.year}"
        else:
            span = f"{a:%b} {a.day} – {b.day}, {b.year}"
        return f"Week {week}, {span}"

    @property
    def short(self) -> str:
        return f"{self.first:%b} {self.first.day} – {self.last:%b} {self.last.day}"


def period_of(kind_period: str, day: "str | date") -> str | None:
    """The period a nightly run for ``day`` reports for a kind of ``kind_period``: the
    day itself; for a weekly kind, the week when ``day`` is its Sunday (the last night
    of the week), else None; a period key already in the kind's form is kept."""
    if kind_period == "week":
        text = day.isoformat() if isinstance(day, date) else str(day)
        if "-W" in text.upper():
            return Week.parse(text).key
        d = date.fromisoformat(text)
        return Week.parse(d).key if d.weekday() == 6 else None
    if kind_period == "month" and isinstance(day, date):
        return Month.parse(day).key
    return day.isoformat() if isinstance(day, date) else str(day)


def months_between(first: "str | date | Month", last: "str | date | Month") -> list[Month]:
    """``first`` .. ``last`` inclusive."""
    m, end, out = Month.parse(first), Month.parse(last), []
    while m <= end:
        out.append(m)
        m = m.shift(1)
    return out


def _revise_window(kind_period: str, entry: dict) -> int:
    return int(entry.get(REVISE_KEY[kind_period], DEFAULT_REVISE[kind_period]))


def _shifted(kind_period: str, period: str, steps: range) -> list[str]:
    """The periods ``steps`` days, weeks or months from ``period`` (negative: earlier)."""
    if kind_period == "day":
        d = date.fromisoformat(period)
        return [(d + timedelta(days=i)).isoformat() for i in steps]
    if kind_period == "week":
        week = Week.parse(period)
        return [week.shift(i).key for i in steps]
    month = Month.parse(period)
    return [month.shift(i).key for i in steps]


def periods_to_check(kind_period: str, entry: dict, period: str) -> list[str]:
    """The period itself, then the earlier ones late data may still change (daily
    reports: ``revise_days`` back; weekly: ``revise_weeks``, default the week before;
    monthly: the month before, for late reviews)."""
    if kind_period == "week":
        period = Week.parse(period).key
    return [period] + _shifted(kind_period, period, range(-1, -_revise_window(kind_period, entry) - 1, -1))


def later_periods_to_check(kind_period: str, entry: dict, period: str) -> list[str]:
    """The periods after ``period`` whose figures it may change, as far forward as
    ``periods_to_check`` looks back: a night run after later nights were reported (a
    backfill out of order, a missing night found late) changes their census, and a
    report already sent for them is revised."""
    return _shifted(kind_period, period, range(1, _revise_window(kind_period, entry) + 1))


def live_period(kind_period: str, as_of: date) -> str:
    """The period a live run started on ``as_of`` reports: yesterday, the last week
    that ended before ``as_of``, or last month."""
    if kind_period == "day":
        return (as_of - timedelta(days=1)).isoformat()
    if kind_period == "week":
        return Week.parse(as_of).shift(-1).key
    return Month.parse(as_of).shift(-1).key


def is_history(kind_period: str, entry: dict, period: str, as_of: date) -> bool:
    """True when ``period`` is older than every period a live run on ``as_of`` would
    send or revise (ISO period keys compare in date order; a day given for a weekly
    report stands for its week)."""
    if kind_period == "week":
        period = Week.parse(period).key
    return period < periods_to_check(kind_period, entry, live_period(kind_period, as_of))[-1]
