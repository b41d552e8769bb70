"""Did it get slower? A run's headline figures against a baseline's.

One rule, shared by ``blog-perf compare``, ``blog-perf locust --baseline`` and
the LoadTest operator's ``spec.compare``: a figure has regressed when it is
worse than the baseline by more than its tolerance, and a tolerance has two
parts, a relative one and an absolute floor. The allowed worsening is the
larger of the two, so noise on a small figure (1 ms on a 3 ms p95 is 33 %)
cannot fail a release, and a large figure is judged in percent.

The defaults come from repeated identical runs on a 2-core machine (see
docs/performance.md, "Baselines and noise"): on a quiet machine, single runs
of the seed's mix lay up to 42 % above their series' median in non-AI p95 and
47 % in p99, within 4 % in requests per second (think time fixes the rate of a
closed user loop), and had no errors. The defaults sit above that spread, so
the same build passes against the median of its last runs.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .judging import MAX, Check


@dataclass(frozen=True)
class Tolerance:
    """How much worse a figure may get: ``percent`` of the baseline or
    ``absolute`` (in the figure's own unit), whichever is larger."""
    percent: float = 0.0
    absolute: float = 0.0

    def allowed(self, baseline: float) -> float:
        return max(abs(baseline) * self.percent / 100.0, self.absolute)


@dataclass(frozen=True)
class Figure:
    key: str             # the LoadTest's name for it (spec.compare.tolerances.<key>)
    label: str
    unit: str            # ms | rps | ratio
    lower_is_better: bool
    path: tuple          # where a Locust summary keeps it


# The figures a LoadTest's verdict judges (perfcontract.judging.locust_checks), in that order.
FIGURES = (
    Figure("p95", "non-AI p95 (ms)", "ms", True, ("non_ai", "p95_ms")),
    Figure("p99", "non-AI p99 (ms)", "ms", True, ("non_ai", "p99_ms")),
    Figure("rps", "requests/s", "rps", False, ("rps",)),
    Figure("errorRate", "error rate", "ratio", True, ("failure_rate",)),
)
BY_KEY = {f.key: f for f in FIGURES}

DEFAULT_TOLERANCES = {
    "p95": Tolerance(percent=50.0, absolute=10.0),
    "p99": Tolerance(percent=75.0, absolute=25.0),
    "rps": Tolerance(percent=10.0, absolute=1.0),
    "errorRate": Tolerance(percent=0.0, absolute=0.005),  # 0.5 percentage points
}
# The same rule by unit, for every figure ``blog-perf compare`` shows (concurrency levels, cache...).
DEFAULT_BY_UNIT = {"ms": DEFAULT_TOLERANCES["p95"], "rps": DEFAULT_TOLERANCES["rps"],
                   "ratio": DEFAULT_TOLERANCES["errorRate"]}
OTHER_UNITS = Tolerance(percent=10.0)


def finite_number(value) -> float | None:
    """``value`` when it is a finite number (not a bool), else None: how every figure read
    from a summary, a result or a timeline is taken (they may come from a hostile runner)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return value


def worse_by(baseline: float, value: float, lower_is_better: bool) -> float:
    """How much worse ``value`` is than ``baseline`` (negative: better)."""
    return value - baseline if lower_is_better else baseline - value


def no_worse_than(name: str, baseline: float, value: float | None, lower_is_better: bool,
                  tolerance: Tolerance) -> Check:
    """The check: measures how much worse the value is, its limit is the allowed
    worsening. An unmeasured value fails, as every unmeasured figure does."""
    measured = None if value is None else worse_by(baseline, value, lower_is_better)
    return Check(f"{name}: worse than the baseline by", measured, tolerance.allowed(baseline), MAX)


def figures_of(summary: dict | None) -> dict[str, float | None]:
    """The judged figures of a Locust summary (results.json's or a runner's log line)."""
    out = {}
    for figure in FIGURES:
        value = summary or {}
        for part in figure.path:
            value = value.get(part) if isinstance(value, dict) else None
        out[figure.key] = finite_number(value)
    return out


def median(runs: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Each figure's median over the runs that measured it (None when none did)."""
    out = {}
    for figure in FIGURES:
        values = [run.get(figure.key) for run in runs if run.get(figure.key) is not None]
        out[figure.key] = statistics.median(values) if values else None
    return out


@dataclass(frozen=True)
class Row:
    """One figure of a comparison: what the report and the LoadTestResult show."""
    figure: Figure
    baseline: float | None
    value: float | None
    tolerance: Tolerance
    check: Check | None  # None: the baseline has no such figure, nothing to judge

    @property
    def regressed(self) -> bool:
        return self.check is not None and not self.check.passed

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None or self.value is None else self.value - self.baseline

    @property
    def delta_percent(self) -> float | None:
        if self.delta is None or self.baseline == 0:
            return None
        return self.delta / abs(self.baseline) * 100.0


def compare(baseline: dict[str, float | None], current: dict[str, float | None],
            tolerances: dict[str, Tolerance] | None = None) -> list[Row]:
    """Every judged figure of ``current`` against ``baseline``."""
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    rows = []
    for figure in FIGURES:
        old, new, tolerance = baseline.get(figure.key), current.get(figure.key), tolerances[figure.key]
        check = None if old is None else no_worse_than(figure.label, old, new, figure.lower_is_better, tolerance)
        rows.append(Row(figure, old, new, tolerance, check))
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.regressed]


def reasons(rows: list[Row]) -> list[str]:
    """One line per regressed figure: a LoadTest's reasons and blog-perf's stderr say it so."""
    return [f"regressed: {describe(row)}" for row in regressions(rows)]


def describe(row: Row) -> str:
    """One line for a status message or a log: ``non-AI p95 (ms): 140 -> 240 (+100, allowed +56)``."""
    def number(x):
        return "unmeasured" if x is None else f"{x:.4g}"
    allowed = row.check.limit if row.check else None
    return (f"{row.figure.label}: {number(row.baseline)} -> {number(row.value)} "
            f"({'' if row.delta is None or row.delta < 0 else '+'}{number(row.delta)}, "
            f"allowed {'' if allowed is None else ('-' if not row.figure.lower_is_better else '+')}{number(allowed)})")


def record(source: dict, rows: list[Row]) -> dict:
    """The comparison as results.json and a LoadTestResult keep it: where the
    baseline came from, and each figure's baseline, value, delta and verdict."""
    return {"baseline": source, "regressed": bool(regressions(rows)),
            "figures": [{"figure": row.figure.key, "baseline": row.baseline, "value": row.value,
                         "delta": row.delta, "deltaPercent": row.delta_percent,
                         "allowedWorsening": row.check.limit if row.check else None,
                         "tolerance": {"percent": row.tolerance.percent, "absolute": row.tolerance.absolute},
                         "regressed": row.regressed} for row in rows]}


# How figures and tolerances travel on a command line (the operator hands a run its baseline
# this way): ``p95=124,p99=260,rps=33,errorRate=0`` and ``p95=40:10,rps=10:1``.
class FormatError(ValueError):
    """A figure or tolerance list that does not parse; the message names the part."""


def _pairs(text: str, what: str):
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in BY_KEY:
            raise FormatError(f"{what}: {part!r} is not FIGURE=VALUE with FIGURE one of {', '.join(BY_KEY)}")
        yield key.strip(), value.strip()


def _non_negative(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(f"{what}: {text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise FormatError(f"{what}: {text!r} is not a number from 0")
    return value


def parse_figures(text: str) -> dict[str, float]:
    return {key: _non_negative(value, f"baseline {key}") for key, value in _pairs(text, "baseline figures")}


def parse_tolerances(text: str) -> dict[str, Tolerance]:
    """``p95=40:10`` (percent, then the absolute floor; either may be left out: ``p95=40``, ``p95=:10``)."""
    out = {}
    for key, value in _pairs(text, "tolerances"):
        percent, _, absolute = value.partition(":")
        default = DEFAULT_TOLERANCES[key]
        out[key] = Tolerance(_non_negative(percent, f"{key} percent") if percent else default.percent,
                             _non_negative(absolute, f"{key} floor") if absolute else default.absolute)
    return out


def format_figures(figures: dict[str, float | None]) -> str:
    return ",".join(f"{key}={value:.6g}" for key, value in figures.items() if value is not None)


def format_tolerances(tolerances: dict[str, Tolerance]) -> str:
    return ",".join(f"{key}={t.percent:g}:{t.absolute:g}" for key, t in tolerances.items())
