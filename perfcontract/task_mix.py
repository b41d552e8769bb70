"""The task mix of the blog's Locust scenario: which tasks it has and their
weights. The suite's ``--weights`` and a LoadTest's ``spec.weights`` are both
checked against it, so they name the same tasks."""
from __future__ import annotations

# The seed's task mix (weights); ``--weights`` changes it.
DEFAULT_TASK_WEIGHTS = {"home": 10, "post": 5, "login": 1, "write": 1, "ai": 2}


def parse_weights(text: str | None) -> dict[str, int]:
    """'home=10,ai=0' -> the default mix with those weights changed. Raises ValueError naming the problem."""
    weights = dict(DEFAULT_TASK_WEIGHTS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in weights:
            raise ValueError(f"unknown task {name!r}; tasks are {', '.join(DEFAULT_TASK_WEIGHTS)}")
        if not value.strip().isdigit():
            raise ValueError(f"weight of {name!r} must be a whole number >= 0, got {value!r}")
        weights[name] = int(value)
    if not any(weights.values()):
        raise ValueError("at least one task needs a weight above 0")
    return weights
