"""Report periods, defined once: a day (key ``YYYY-MM-DD``) or a month (``YYYY-MM``,
``Month``), which earlier periods late data may still revise, and when a period is
history (older than every period a live run would send or revise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

DEFAULT_REVISE = {"day": 7, "month": 1}  # catalog `revise_days` (days) / periods back (months)


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


def months_between(first: "str | date | Month", last: "str | date | Month") -> list[Month]:
    """``first`` .. ``last`` inclusive."""
    m, end, out = Month.parse(first), Month.parse(last), []
    while m <= end:
        out.append(m)
        m = m.shift(1)
    return out


def _revise_window(kind_period: str, entry: dict) -> int:
    return int(entry.get("revise_days", DEFAULT_REVISE[kind_period]))


def _shifted(kind_period: str, period: str, steps: range) -> list[str]:
    """The periods ``steps`` days or months from ``period`` (negative: earlier)."""
    if kind_period == "day":
        d = date.fromisoformat(period)
        return [(d + timedelta(days=i)).isoformat() for i in steps]
    month = Month.parse(period)
    return [month.shift(i).key for i in steps]


def periods_to_check(kind_period: str, entry: dict, period: str) -> list[str]:
    """The period itself, then the earlier ones late data may still change (daily
    reports: ``revise_days`` back; monthly: the month before, for late reviews)."""
    return [period] + _shifted(kind_period, period, range(-1, -_revise_window(kind_period, entry) - 1, -1))


def later_periods_to_check(kind_period: str, entry: dict, period: str) -> list[str]:
    """The periods after ``period`` whose figures it may change, as far forward as
    ``periods_to_check`` looks back: a night run after later nights were reported (a
    backfill out of order, a missing night found late) changes their census, and a
    report already sent for them is revised."""
    return _shifted(kind_period, period, range(1, _revise_window(kind_period, entry) + 1))


def live_period(kind_period: str, as_of: date) -> str:
    """The period a live run started on ``as_of`` reports: yesterday, or last month."""
    if kind_period == "day":
        return (as_of - timedelta(days=1)).isoformat()
    return Month.parse(as_of).shift(-1).key


def is_history(kind_period: str, entry: dict, period: str, as_of: date) -> bool:
    """True when ``period`` is older than every period a live run on ``as_of`` would
    send or revise (ISO period keys compare in date order)."""
    return period < periods_to_check(kind_period, entry, live_period(kind_period, as_of))[-1]
