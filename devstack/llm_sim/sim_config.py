"""The simulator's settings (``--flags`` at start, ``POST /sim/config`` at run time)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MODEL = "gemma3:270m"


@dataclass
class SimConfig:
    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    ttft: float = 0.05            # seconds before the first token
    tokens_per_second: float = 200.0  # 0 = as fast as possible
    tokens: int = 120             # answer length (the request's max tokens may cut it)
    answer_seconds: float | None = None  # if set: every answer takes this long in total
    error_rate: float = 0.0       # share of generations answered HTTP 500
    hang_rate: float = 0.0        # share that never answer
    cut_rate: float = 0.0         # share whose stream breaks off half-way
    seed: int = 0                 # seeds the error/hang/cut dice

    RATES = ("error_rate", "hang_rate", "cut_rate")

    def validate(self) -> None:
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise ValueError("models must be a non-empty list of names")
        for name in ("ttft", "tokens_per_second"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.tokens < 1:
            raise ValueError("tokens must be at least 1")
        if self.answer_seconds is not None and self.answer_seconds < self.ttft:
            raise ValueError("answer_seconds must be at least ttft")
        for name in self.RATES:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(getattr(self, name) for name in self.RATES) > 1:
            raise ValueError("error_rate + hang_rate + cut_rate must not exceed 1")

    def updated(self, changes: dict[str, Any]) -> "SimConfig":
        """A copy with ``changes`` applied (JSON types checked), validated."""
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object of settings")
        types = {f.name: f.type for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for key, value in changes.items():
            if key == "model":  # convenience: one model name
                key, value = "models", [value]
            if key not in types:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(types))}")
            if key == "models":
                if not isinstance(value, list):
                    raise ValueError("models must be a list of names")
            elif key == "answer_seconds" and value is None:
                pass
            elif key in ("tokens", "seed"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"{key} must be an integer")
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            values[key] = value
        new = SimConfig(**values)
        new.validate()
        return new

    def serves(self, model: str) -> bool:
        return "*" in self.models or model in self.models or f"{model}:latest" in self.models

    def listed(self, requested: set[str]) -> list[str]:
        """Names for /api/tags and /v1/models. With "*" (any model), the
        default model and every name asked for so far, so a client's
        model check passes as its generation would."""
        names = [m for m in self.models if m != "*"]
        if "*" in self.models:
            names += sorted({DEFAULT_MODEL, *requested} - set(names))
        return names
