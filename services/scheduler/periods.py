"""Pure: digest periods in Swedish local time. A week is an ISO week (Monday to Monday), a month a
calendar month; a digest covers the last whole period before it is sent."""

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from contracts.schedule import Period

LOCAL = ZoneInfo("Europe/Stockholm")
Cadence = Literal["weekly", "monthly"]
#: When a digest goes out: 07:00 local on the first day after its period (Monday, the 1st).
SEND_AT = time(7, 0)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL)


def _week(monday: date) -> Period:
    year, week, _ = monday.isocalendar()
    return Period(label=f"{year}-W{week:02d}", start=_local_midnight(monday).astimezone(UTC),
                  end=_local_midnight(monday + timedelta(days=7)).astimezone(UTC))


def _month(first: date) -> Period:
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(label=f"{first.year}-{first.month:02d}", start=_local_midnight(first).astimezone(UTC),
                  end=_local_midnight(following).astimezone(UTC))


def last_whole_period(cadence: Cadence, now: datetime) -> Period:
    """The last period of `cadence` that ended at or before `now`."""
    today = now.astimezone(LOCAL).date()
    if cadence == "weekly":
        this_monday = today - timedelta(days=today.weekday())
        return _week(this_monday - timedelta(days=7))
    first = today.replace(day=1)
    previous = (first - timedelta(days=1)).replace(day=1)
    return _month(previous)


def parse_period(label: str) -> Period:
    """`2026-W47` or `2026-11` as a period; ValueError with the reason otherwise."""
    if m := re.fullmatch(r"(\d{4})-W(\d{2})", label):
        try:
            return _week(date.fromisocalendar(int(m[1]), int(m[2]), 1))
        except ValueError as exc:
            raise ValueError(f"{label!r}: no such ISO week") from exc
    if m := re.fullmatch(r"(\d{4})-(\d{2})", label):
        if not 1 <= int(m[2]) <= 12:
            raise ValueError(f"{label!r}: no such month")
        return _month(date(int(m[1]), int(m[2]), 1))
    raise ValueError(f"{label!r} is not a period: write 2026-W47 (a week) or 2026-11 (a month)")



def following(cadence: Cadence, period: Period) -> Period:
    """The period right after `period`."""
    start = period.end.astimezone(LOCAL).date()
    return _week(start) if cadence == "weekly" else _month(start)


def send_time(period: Period) -> datetime:
    """When a period's digest goes: SEND_AT local on the first day after it (a Monday, or the 1st)."""
    return datetime.combine(period.end.astimezone(LOCAL).date(), SEND_AT, LOCAL).astimezone(UTC)


def periods_due(cadence: Cadence, last_sent: Period, now: datetime, bound: int) -> tuple[list[Period], int]:
    """The periods after `last_sent` whose digest time has come by `now`, oldest first: each one that was
    missed while nobody scheduled, not only the last. At most the `bound` newest; the second value says how
    many older ones that leaves out."""
    due: list[Period] = []
    period = following(cadence, last_sent)
    while send_time(period) <= now:
        due.append(period)
        period = following(cadence, period)
    return due[-bound:] if bound else [], max(0, len(due) - bound)
