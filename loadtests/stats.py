"""Numbers from raw samples: percentiles, summaries, error kinds.

Every summary is built from the raw samples kept in results.json, so the
report can be re-rendered and compared later. A figure that cannot be
computed (no samples, nothing to divide by) is ``None`` — never 0 or a
negative number pretending to be a measurement.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping

PERCENTILES = (50, 95, 99)


def percentile(values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile (like numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def histogram_percentile(histogram: Mapping[float, int], pct: float) -> float | None:
    """Percentile of a {value: count} histogram (Locust keeps response times so)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    wanted = total * pct / 100.0
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= wanted:
            return float(value)
    return float(max(histogram))


def summarize(latencies_ms: Iterable[float]) -> dict:
    """count, min, mean, p50, p95, p99, max of a list of latencies in ms."""
    values = [float(v) for v in latencies_ms]
    summary = {"count": len(values), "min": min(values, default=None), "max": max(values, default=None),
               "mean": (sum(values) / len(values)) if values else None}
    for pct in PERCENTILES:
        summary[f"p{pct}"] = percentile(values, pct)
    return summary


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def error_rate(errors: int, attempts: int) -> float | None:
    return ratio(errors, attempts)


def error_kind(exc: BaseException | None = None, status: int | None = None) -> str:
    """A short, stable name for why a request failed: timeout, connection, status:NNN, or the exception type."""
    if status is not None:
        return f"status:{status}"
    if exc is None:
        return "unknown"
    import asyncio

    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    name = type(exc).__name__
    if "Timeout" in name:
        return "timeout"
    if isinstance(exc, (ConnectionError, OSError)) or "Connect" in name or "Disconnect" in name \
            or "ServerDisconnected" in name or "ClientOSError" in name:
        return "connection"
    return name


def count_kinds(kinds: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def fmt_ms(value: float | None) -> str:
    """A latency for people: '12.3 ms', '2.51 s', or '—' when not measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_number(value: float | None, digits: int = 1, suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}{suffix}"


def fmt_change(value: float | None) -> str:
    """A relative change for people: +0.12 -> '+12.0 %', or '—' when not measured."""
    return "—" if value is None else f"{value * 100:+.1f} %"


def fmt_pct(value: float | None, digits: int = 2) -> str:
    """A ratio (0..1) as a percentage."""
    if value is None:
        return "—"
    return f"{value * 100:.{digits}f} %"
