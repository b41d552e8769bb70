"""Every setting the blog reads, in one table, from the environment only.

The README's configuration table is generated from ``SETTINGS`` (see
``aiblog settings --markdown``), so this module is the single source of truth.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

DEFAULT_SECRET_KEY = "dev-insecure-change-me"


class ConfigError(RuntimeError):
    """Raised when the environment holds a value the blog cannot run with."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return number


def _non_negative_float(value: str) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"expected a non-negative number, got {value!r}")
    return number


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


@dataclass(frozen=True)
class Setting:
    env: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    group: str = "core"


SETTINGS: tuple[Setting, ...] = (
    # core
    Setting("BLOG_ENV", "development", _choice("development", "production"),
            "`production` refuses to start without a real `SECRET_KEY`."),
    Setting("SECRET_KEY", DEFAULT_SECRET_KEY, str,
            "Signs sessions, CSRF and API tokens. Required in production."),
    Setting("DATABASE_URL", "sqlite:///instance/aiblog.sqlite3", str,
            "SQLAlchemy URL; `postgresql://user:pass@host/db` for Postgres."),
    Setting("REDIS_URL", "", str,
            "Redis for page/AI cache, rate limits, locks, active users, jobs. "
            "Unset: in-process cache and limits (one machine only)."),
    Setting("PORT", 8000, _positive_int, "Public HTTP port of gunicorn."),
    Setting("BIND_HOST", "127.0.0.1", str,
            "Address gunicorn binds (`0.0.0.0` in containers)."),
    Setting("WEB_CONCURRENCY", 2, _positive_int, "gunicorn worker processes."),
    Setting("WORKER_CONNECTIONS", 1000, _positive_int,
            "Concurrent requests per gevent worker."),
    Setting("POSTS_PER_PAGE", 10, _positive_int, "Posts on each home/author page."),
    Setting("PAGE_CACHE_TTL", 300, _positive_int,
            "Seconds a rendered page may stay cached (writes invalidate at once)."),
    Setting("MAX_CONTENT_LENGTH", 1024 * 1024, _positive_int,
            "Largest request body in bytes; larger answers 413."),
    Setting("LOGIN_RATE_LIMIT", "10 per minute", str,
            "Failed logins allowed per username and per IP."),
    Setting("API_TOKEN_TTL", 3600, _positive_int, "Lifetime of API tokens in seconds."),
    Setting("DB_POOL_SIZE", 10, _positive_int, "SQLAlchemy pool size per worker."),
    # monitoring
    Setting("METRICS_PORT", 9100, _positive_int,
            "Port of the separate `/metrics` endpoint (never on the public port).",
            "monitoring"),
    Setting("METRICS_BIND", "", str,
            "Address the metrics server binds (default: `BIND_HOST`).", "monitoring"),
    Setting("WORKER_METRICS_PORT", 9101, int,
            "Port of `blog-worker`'s own `/metrics` (background AI jobs); 0 turns it off.",
            "monitoring"),
    Setting("METRICS_ENABLED", True, _bool, "Turn Prometheus instrumentation off.",
            "monitoring"),
    Setting("PROMETHEUS_MULTIPROC_DIR", "", str,
            "Scratch dir shared by gunicorn workers for metrics; created and "
            "emptied at start (default: a temp dir).", "monitoring"),
    # AI writing
    Setting("LLM_API", "ollama", _choice("ollama", "openai", "sim"),
            "LLM protocol: Ollama native, OpenAI-compatible, or the simulator "
            "(which speaks the Ollama protocol).", "ai"),
    Setting("LLM_BASE_URL", "http://127.0.0.1:11434", str, "LLM server address.", "ai"),
    Setting("LLM_MODEL", "gemma3:270m", str, "Model name sent to the LLM.", "ai"),
    Setting("LLM_CONNECT_TIMEOUT", 2.0, _non_negative_float,
            "Seconds to connect to the LLM.", "ai"),
    Setting("LLM_FIRST_TOKEN_TIMEOUT", 30.0, _non_negative_float,
            "Seconds to wait for the first token.", "ai"),
    Setting("LLM_TOTAL_TIMEOUT", 120.0, _non_negative_float,
            "Seconds for a whole generation.", "ai"),
    Setting("LLM_MAX_INFLIGHT", 4, _positive_int,
            "LLM calls at once per process; beyond, sync/stream answer 429.", "ai"),
    Setting("LLM_MAX_TOKENS", 400, _positive_int, "Largest answer in tokens.", "ai"),
    Setting("LLM_TEMPERATURE", 0.7, _non_negative_float, "Sampling temperature.", "ai"),
    Setting("LLM_KEEP_ALIVE", "5m", str, "Ollama `keep_alive` (model stays loaded).", "ai"),
    Setting("AI_CACHE_TTL", 86400, _positive_int, "Seconds a generated text stays cached.", "ai"),
    Setting("AI_SINGLE_FLIGHT_WAIT", 150.0, _non_negative_float,
            "Longest wait for another request's identical generation.", "ai"),
    Setting("AI_RATE_LIMIT", "30 per minute", str, "Uncached generations per user (cached answers are free).", "ai"),
    Setting("CIRCUIT_FAILURES", 3, _positive_int,
            "Consecutive LLM failures that open the circuit.", "ai"),
    Setting("CIRCUIT_COOLDOWN", 10.0, _non_negative_float,
            "Seconds the circuit stays open before a probe.", "ai"),
    Setting("LLM_SIMULATED", False, _bool,
            "Label AI output as simulated (set by `make run` when it starts "
            "the simulator).", "ai"),
)

_BY_ENV = {s.env: s for s in SETTINGS}


@dataclass
class Config:
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def load(environ: dict[str, str] | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read every setting from ``environ`` and validate it.

    Returns a plain dict suitable for ``app.config.update``. Raises
    ``ConfigError`` naming the variable when a value cannot be parsed, or when
    production runs with the development secret.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None or raw == "" and setting.default != "":
            values[setting.env] = setting.default
            continue
        try:
            values[setting.env] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.env}: {exc}") from None
    values.update(overrides or {})
    if values["BLOG_ENV"] == "production" and (
        not values["SECRET_KEY"] or values["SECRET_KEY"] == DEFAULT_SECRET_KEY
        or len(values["SECRET_KEY"]) < 16
    ):
        raise ConfigError(
            "SECRET_KEY must be set to a random value of at least 16 characters "
            "when BLOG_ENV=production (for example: "
            "python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return values


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| Variable | Default | Purpose |", "|---|---|---|"]
    for s in SETTINGS:
        default = "(unset)" if s.default == "" else f"`{s.default}`"
        lines.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines)
