"""Cron schedules (5 fields, UTC) and the clock the operator reads.

The clock is an object the tests replace, so a schedule test moves time
instead of waiting for it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from croniter import croniter


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


def problem(cron) -> str | None:
    """Why ``cron`` is not a 5-field cron expression, or None."""
    if not isinstance(cron, str) or len(cron.split()) != 5:
        return f"{cron!r} is not a 5-field cron expression such as '0 3 * * *' (minute hour day month weekday)"
    if not croniter.is_valid(cron):
        return f"{cron!r} is not a valid cron expression"
    return None


def next_after(cron: str, moment: datetime) -> datetime:
    """The first time strictly after ``moment`` that ``cron`` names, in UTC."""
    return croniter(cron, moment.astimezone(timezone.utc)).get_next(datetime).astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None
