"""Every setting the blog reads, in one table, from the environment only.

The README's configuration table is generated from ``SETTINGS`` (see
``aiblog settings --markdown``), so this module is the single source of truth.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlsplit, urlunsplit

from .client_address import trusted_networks
from .rate_texts import rate_limit_setting
from .trusted_hosts import setting as _trusted_hosts

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


def _number(convert, what: str, positive: bool):
    """A parser for a number above 0 (``positive``) or at least 0."""
    def parse(value: str):
        number = convert(value)
        if not (number > 0 if positive else number >= 0):
            raise ValueError(f"expected a {what}, got {value!r}")
        return number
    return parse


_positive_int = _number(int, "positive integer", positive=True)
_non_negative_int = _number(int, "non-negative integer", positive=False)
_non_negative_float = _number(float, "non-negative number", positive=False)
_positive_float = _number(float, "positive number", positive=True)


def _log_level(value: str) -> str:
    return _choice("debug", "info", "warning", "error", "critical")(value.strip().lower())


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    return parse


def _peer_list(value: str) -> str:
    trusted_networks(value)  # validates; the middleware parses it again at start
    return value


@dataclass(frozen=True)
class Setting:
    env: str
    default: Any
    parse: Callable[[str], Any]
    help: str
    secret: bool = False  # never printed by `aiblog settings`


SETTINGS: tuple[Setting, ...] = (
    # core
    Setting("BLOG_ENV", "development", _choice("development", "production"),
            "`production` refuses to start without a real `SECRET_KEY`."),
    Setting("SECRET_KEY", DEFAULT_SECRET_KEY, str,
            "Signs sessions, CSRF and API tokens. Required in production and whenever "
            "`BIND_HOST` is not loopback (the server refuses the public default).", secret=True),
    Setting("DATABASE_URL", "sqlite:///instance/aiblog.sqlite3", str,
            "SQLAlchemy URL; `postgresql://user:pass@host/db` for Postgres."),
    Setting("DATABASE_PASSWORD", "", str,
            "Database password, put into `DATABASE_URL` percent-encoded (so `@`, `:` "
            "and `/` work); replaces a password the URL has. For passwords kept in a Secret.",
            secret=True),
    Setting("REDIS_URL", "", str,
            "Redis for page/AI cache, rate limits, locks, active users, jobs. "
            "Unset: in-process cache and limits (one machine only)."),
    Setting("REDIS_PASSWORD", "", str,
            "Redis password, put into `REDIS_URL` percent-encoded, like `DATABASE_PASSWORD`.",
            secret=True),
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
    Setting("PAGE_CACHE_MAX_BYTES", 32 * 1024 * 1024, _positive_int,
            "Bytes of rendered pages each worker keeps in its own memory (least recently used go first)."),
    Setting("MARKDOWN_HTML_MAX", 1_000_000, _positive_int,
            "Largest rendered HTML of a post in characters; a longer one is refused with 400."),
    # CPU seconds of the rendering thread. The longest ordinary post (100 KB of
    # prose) takes about 0.23 s on a slow 2-core VM: 0.5 s refused it while the
    # machine was busy; pathological input still stops at the first second.
    Setting("MARKDOWN_RENDER_BUDGET", 1.0, _positive_float,
            "Seconds rendering one post's Markdown may take; slower input is refused with 400."),
    Setting("LOGIN_RATE_LIMIT", "5 per minute; 20 per hour", rate_limit_setting,
            "Failed logins (web form and `POST /api/v1/tokens`) per username from one address; "
            "the longer window makes repeated bursts wait longer. Counted before the password "
            "is checked, given back when it is right; the owner elsewhere is never locked out."),
    Setting("LOGIN_ADDRESS_RATE_LIMIT", "30 per minute; 200 per hour", rate_limit_setting,
            "Failed logins per address, whatever the username."),
    Setting("REGISTER_RATE_LIMIT", "5 per hour", rate_limit_setting,
            "Sign-ups per address (each costs a password hash). `make run`, `make bench` and the "
            "perf tests raise it and the login and list limits (`loadtests/limits.py`)."),
    Setting("SIGNUP_ROLE", "author", _choice("reader", "author"),
            "Role of a new account: `author` writes posts and uses AI writing; `reader` waits for "
            "an admin to promote it (admin Users page)."),
    Setting("API_LIST_RATE_LIMIT", "300 per minute", rate_limit_setting,
            "`GET /api/v1/posts` requests per address."),
    Setting("TRUSTED_PROXY_HOPS", 0, _non_negative_int,
            "Reverse proxies in front of the blog (1 behind one ingress). The client address "
            "for the per-address limits is then read from `X-Forwarded-For`, only as deep as "
            "this and only from peers in `FORWARDED_ALLOW_IPS`; 0 uses the peer address."),
    Setting("API_TOKEN_TTL", 3600, _positive_int, "Lifetime of API tokens in seconds."),
    Setting("CSRF_TIME_LIMIT", 3600, _positive_int,
            "Seconds a form's CSRF token stays valid; an older form asks to reload the page."),
    Setting("DB_POOL_SIZE", 10, _positive_int, "SQLAlchemy pool size per worker."),
    Setting("SESSION_COOKIE_SECURE", True, _bool,
            "With `BLOG_ENV=production`, send the session cookie over HTTPS only; "
            "`false` for a plain-HTTP cluster such as kind (logins fail otherwise)."),
    Setting("FORWARDED_ALLOW_IPS", "127.0.0.1", _peer_list,
            "Proxies whose `X-Forwarded-*` headers are trusted (comma-separated addresses or "
            "networks, `*` for any)."),
    Setting("TRUSTED_HOSTS", "", _trusted_hosts,
            "Host names the blog answers under (comma-separated; `.example.com` accepts its "
            "subdomains); any other `Host` gets 400. Unset: any host (development). The chart "
            "sets it from its Ingress, HTTPRoute and Service names."),
    Setting("LOG_LEVEL", "info", _log_level,
            "Log level of gunicorn and `blog-worker`: debug, info, warning, error, critical."),
    Setting("GUNICORN_WORKER_CLASS", "gevent", _choice("gevent", "gthread", "sync"),
            "gunicorn worker class; `gevent` lets slow AI requests wait without holding a worker."),
    Setting("GUNICORN_MAX_REQUESTS", 0, _non_negative_int,
            "Restart a worker after this many requests (with 10 % jitter) to cap slow "
            "memory growth; 0 never restarts."),
    Setting("GUNICORN_ACCESS_LOG", "", str,
            "Access log file (`-` for stdout). Unset: no access log."),
    Setting("ADMIN_PASSWORD", "", str,
            "Password for `aiblog create-admin` when `--password` is not given (not read "
            "by the server).", secret=True),
    # monitoring
    Setting("METRICS_PORT", 9100, _positive_int,
            "Port of the separate `/metrics` endpoint (never on the public port)."),
    Setting("METRICS_BIND", "", str,
            "Address the metrics server binds (default: `BIND_HOST`)."),
    Setting("METRICS_MAX_CONNECTIONS", 16, _positive_int,
            "Connections the metrics server (in the gunicorn master) handles at once; beyond it "
            "the oldest one that has not sent its request is dropped."),
    Setting("METRICS_CONNECTION_TIMEOUT", 5.0, _positive_float,
            "Seconds a metrics connection may stay silent (reading or writing) before it is closed."),
    Setting("WORKER_METRICS_PORT", 9101, int,
            "Port of `blog-worker`'s own `/metrics` (background AI jobs); 0 turns it off."),
    Setting("METRICS_ENABLED", True, _bool, "Turn Prometheus instrumentation off."),
    Setting("PROMETHEUS_MULTIPROC_DIR", "", str,
            "Scratch dir shared by gunicorn workers for metrics; created and "
            "emptied at start (default: a temp dir)."),
    # AI writing
    Setting("LLM_API", "ollama", _choice("ollama", "openai", "sim"),
            "LLM protocol: Ollama native, OpenAI-compatible, or the simulator "
            "(which speaks the Ollama protocol)."),
    Setting("LLM_BASE_URL", "http://127.0.0.1:11434", str, "LLM server address."),
    Setting("LLM_MODEL", "gemma3:270m", str, "Model name sent to the LLM."),
    Setting("LLM_CONNECT_TIMEOUT", 2.0, _non_negative_float,
            "Seconds to connect to the LLM."),
    Setting("LLM_FIRST_TOKEN_TIMEOUT", 30.0, _non_negative_float,
            "Seconds to wait for the first token."),
    Setting("LLM_TOTAL_TIMEOUT", 120.0, _non_negative_float,
            "Seconds for a whole generation."),
    Setting("LLM_MAX_INFLIGHT", 4, _positive_int,
            "LLM calls at once per process; beyond, sync/stream answer 429."),
    Setting("LLM_MAX_TOKENS", 400, _positive_int, "Largest answer in tokens."),
    Setting("LLM_TEMPERATURE", 0.7, _non_negative_float, "Sampling temperature."),
    Setting("LLM_KEEP_ALIVE", "5m", str, "Ollama `keep_alive` (model stays loaded)."),
    Setting("AI_CACHE_TTL", 86400, _positive_int, "Seconds a generated text stays cached."),
    Setting("AI_SINGLE_FLIGHT_WAIT", 150.0, _non_negative_float,
            "Longest wait for another request's identical generation."),
    Setting("AI_RATE_LIMIT", "30 per minute", rate_limit_setting,
            "Uncached generations per user (cached answers and shared ones are free)."),
    Setting("AI_QUEUE_MAX_PER_USER", 5, _positive_int,
            "Background generations one user may have queued or running; beyond, 429."),
    Setting("AI_QUEUE_MAX", 200, _positive_int,
            "Background generations queued or running in all; beyond, 429."),
    Setting("CIRCUIT_FAILURES", 3, _positive_int,
            "Consecutive LLM failures that open the circuit."),
    Setting("CIRCUIT_COOLDOWN", 10.0, _non_negative_float,
            "Seconds the circuit stays open before a probe."),
    Setting("LLM_SIMULATED", False, _bool,
            "Label AI output as simulated (set by `make run` when it starts "
            "the simulator)."),
)


def url_with_password(url: str, password: str) -> str:
    """``url`` with ``password`` percent-encoded into its user part (replacing
    any password it had), so that ``@``, ``:`` or ``/`` in it cannot be read as
    URL syntax. SQLAlchemy and redis-py decode it again."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"a password needs a URL with a host, got {url!r}")
    user_info, _, host_port = parts.netloc.rpartition("@")
    user = user_info.partition(":")[0]
    netloc = f"{user}:{quote(password, safe='')}@{host_port}"
    return urlunsplit(parts._replace(netloc=netloc))


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
    for url_key, password_key in (("DATABASE_URL", "DATABASE_PASSWORD"), ("REDIS_URL", "REDIS_PASSWORD")):
        if values.get(password_key):
            try:
                values[url_key] = url_with_password(values[url_key], values[password_key])
            except ValueError as exc:
                raise ConfigError(f"{password_key}: {exc}") from None
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


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def refuse_public_default_secret(values: dict[str, Any]) -> None:
    """Raise ``ConfigError`` when the server would bind beyond loopback with the
    public development key: anyone could forge an admin session (any ``BLOG_ENV``)."""
    host = values["BIND_HOST"].strip("[]").lower()
    if values["SECRET_KEY"] == DEFAULT_SECRET_KEY and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"SECRET_KEY is the public development default and BIND_HOST={values['BIND_HOST']} "
            "is reachable beyond loopback: set SECRET_KEY to a random value (for example: "
            "python -c 'import secrets; print(secrets.token_hex(32))') or bind 127.0.0.1"
        )


def shown(setting: Setting, value: Any) -> str:
    """``value`` as ``aiblog settings`` prints it: secrets and URL passwords hidden."""
    if setting.secret:
        if setting.env == "SECRET_KEY" and value == DEFAULT_SECRET_KEY:
            return "(development default)"
        return "(set)" if value else "(unset)"
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            user_info, _, host_port = parts.netloc.rpartition("@")
            return urlunsplit(parts._replace(netloc=f"{user_info.partition(':')[0]}:***@{host_port}"))
    return str(value)


def markdown_table() -> str:
    """The README's configuration table."""
    lines = ["| Variable | Default | Purpose |", "|---|---|---|"]
    for s in SETTINGS:
        default = "(unset)" if s.default == "" else f"`{s.default}`"
        lines.append(f"| `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines)
