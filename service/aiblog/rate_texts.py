"""Rate limits as the settings table writes them: ``"5 per minute; 20 per hour"``.

Pure parsing, no Flask and no Redis: ``aiblog.config`` imports it, and the
gunicorn master reads the settings before gevent patches the standard
library, so anything imported here must not pull in ``ssl`` (redis does).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*(?:per|/)\s*(\d+\s+)?(second|minute|hour|day)s?\s*$", re.I)


@dataclass(frozen=True)
class Rate:
    amount: int
    seconds: int


@lru_cache(maxsize=64)
def parse_rates(text: str) -> tuple[Rate, ...]:
    """``"5 per minute; 20 per hour"`` as rates. Raises ValueError saying what is wrong."""
    rates = []
    for part in re.split(r"[;,]", text):
        if not part.strip():
            continue
        match = _RATE.match(part)
        if match is None:
            raise ValueError(f"expected limits like '5 per minute; 20 per hour', got {text!r}")
        amount, count, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3).lower()
        if amount < 1 or count < 1:
            raise ValueError(f"a limit needs a positive number and window, got {part.strip()!r}")
        rates.append(Rate(amount, count * UNITS[unit]))
    if not rates:
        raise ValueError(f"expected limits like '5 per minute; 20 per hour', got {text!r}")
    return tuple(rates)


def rate_limit_setting(value: str) -> str:
    """The settings table's parser: validates, keeps the text."""
    parse_rates(value)
    return value
