"""How much can it take? A stepped run's capacity and knee.

A stepped run (``blog-perf locust --steps``, a LoadTest's ``spec.profile``)
holds each number of users for a while and records each step's figures
(``Step``): the runner measures, and this module, shared by ``blog-perf`` and
the LoadTest operator, reads them:

- the **capacity** is the most users of a step within the SLO (non-AI p95
  and error rate), counting from the first step up to the first step that
  breaks it: a lucky step after a breach does not count, since the load
  passed through the breach to get there;
- the **knee** is where latency starts rising faster than load: the users of
  the step before the first step whose non-AI p95 grew by a larger factor
  than its users did, and by more than noise (``KNEE_NOISE_MS``, the absolute
  floor of the p95 tolerance in ``baseline``).

A runner's steps are hostile input to the operator: ``steps_from`` keeps only
well-typed numbers and at most ``MAX_STEPS`` steps (``downsample``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .baseline import DEFAULT_TOLERANCES, finite_number

MAX_STEPS = 100  # steps a profile may have, and a result keeps
KNEE_NOISE_MS = DEFAULT_TOLERANCES["p95"].absolute
STEP_FIELDS = ("users", "seconds", "requests", "failures", "rps", "failure_rate", "p50_ms", "p95_ms", "p99_ms")


class ProfileError(ValueError):
    """A profile that cannot run; the message names the part."""


@dataclass(frozen=True)
class Profile:
    """Users from ``start`` to ``end`` in steps of ``step``, each held ``seconds``."""
    start: int
    end: int
    step: int
    seconds: float

    def __post_init__(self):
        if not (1 <= self.start <= self.end and self.step >= 1 and self.seconds > 0):
            raise ProfileError("a profile goes from 1 or more users up to at least as many, in steps of 1 or "
                               "more, each held for more than 0 s")
        if len(self.users()) > MAX_STEPS:
            raise ProfileError(f"a profile has at most {MAX_STEPS} steps, not {len(self.users())}")

    def users(self) -> list[int]:
        count = (self.end - self.start) // self.step + 1
        out = [self.start + i * self.step for i in range(count)]
        return out if out[-1] == self.end else out + [self.end]

    @property
    def total_seconds(self) -> float:
        return len(self.users()) * self.seconds

    def text(self) -> str:
        """The ``--steps`` form: ``START:END:STEP:SECONDS``."""
        return f"{self.start}:{self.end}:{self.step}:{self.seconds:g}"

    @classmethod
    def parse(cls, text: str) -> "Profile":
        parts = str(text).split(":")
        try:
            if len(parts) != 4:
                raise ValueError
            start, end, step = (int(p) for p in parts[:3])
            seconds = float(parts[3])
        except ValueError:
            raise ProfileError(f"{text!r} is not START:END:STEP:SECONDS, e.g. 10:200:10:30") from None
        if not math.isfinite(seconds):
            raise ProfileError(f"{text!r}: the seconds are not a number")
        return cls(start, end, step, seconds)


@dataclass(frozen=True)
class SLO:
    p95_ms: float | None = None
    max_error_rate: float | None = None

    def met_by(self, step: dict) -> bool:
        """Within the SLO; a step without the figure the SLO asks about is not."""
        if self.p95_ms is not None and (step.get("p95_ms") is None or step["p95_ms"] > self.p95_ms):
            return False
        if self.max_error_rate is not None and (step.get("failure_rate") is None
                                                or step["failure_rate"] > self.max_error_rate):
            return False
        return True

    def as_dict(self) -> dict:
        return {"p95_ms": self.p95_ms, "max_error_rate": self.max_error_rate}



def steps_from(raw) -> list[dict]:
    """The steps of a summary, checked: dicts of numbers (others dropped), users ascending, at most MAX_STEPS."""
    if not isinstance(raw, list):
        return []
    steps = []
    for item in raw[:MAX_STEPS * 10]:
        if isinstance(item, dict) and finite_number(item.get("users")) is not None:
            steps.append({key: finite_number(item.get(key)) for key in STEP_FIELDS})
    steps.sort(key=lambda s: s["users"])
    return downsample(steps, MAX_STEPS)


def downsample(steps: list[dict], most: int) -> list[dict]:
    """At most ``most`` steps, evenly spaced, always with the first and the last."""
    if len(steps) <= most:
        return steps
    picked = sorted({round(i * (len(steps) - 1) / (most - 1)) for i in range(most)})
    return [steps[i] for i in picked]


def capacity(steps: list[dict], slo: SLO) -> dict | None:
    """The last step within the SLO before the first one that is not (None: the first is not)."""
    best = None
    for step in steps:
        if not slo.met_by(step):
            break
        best = step
    return best


def knee(steps: list[dict]) -> dict | None:
    """The step before latency starts rising faster than load (None: it never did)."""
    for before, step in zip(steps, steps[1:]):
        p95_before, p95 = before.get("p95_ms"), step.get("p95_ms")
        if not p95_before or p95 is None or not before["users"]:
            continue
        if p95 / p95_before > step["users"] / before["users"] and p95 - p95_before > KNEE_NOISE_MS:
            return before
    return None


def analyse(steps: list[dict], slo: SLO) -> dict:
    """What a result and a report say of a stepped run."""
    top, bend = capacity(steps, slo), knee(steps)
    return {"steps": steps, "slo": slo.as_dict(),
            "capacity_users": top["users"] if top else None, "capacity_rps": top["rps"] if top else None,
            "capacity_p95_ms": top["p95_ms"] if top else None,
            "knee_users": bend["users"] if bend else None, "knee_p95_ms": bend["p95_ms"] if bend else None}
