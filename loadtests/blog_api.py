"""What the testers know about the blog: its paths, forms and AI API contract.

Kept free of HTTP-client imports so the Locust scenario (gevent) and the
asyncio testers share it.
"""
from __future__ import annotations

import re
import secrets

HOME = "/"
POST = "/post/{id}"
REGISTER = "/register"
LOGIN = "/login"
LOGOUT = "/logout"
CREATE = "/create"
API_POSTS = "/api/v1/posts"
API_TOKENS = "/api/v1/tokens"
API_GENERATE = "/api/v1/generate"
# How the Locust scenario names AI requests; a 429 (deliberate backpressure) gets its own name.
AI_REQUEST_NAME = API_GENERATE
BACKPRESSURE_REQUEST_NAME = f"{API_GENERATE} [429 backpressure]"

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
POST_ID_RE = re.compile(r"/post/(\d+)")

# Some titles in Chinese and Japanese: the AI path and the report must carry CJK text.
TITLE_TOPICS = (
    "Caching rendered pages", "Why p99 matters more than the mean", "缓存与一致性",
    "Gunicorn workers and gevent", "負荷試験の始め方", "Single flight in Redis",
    "Reading flame graphs", "数据库分页的代价", "Backpressure for LLM calls", "Tuning Postgres for a blog",
)


# The seed's task mix of the Locust scenario (weights); ``--weights`` changes it.
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


def csrf_token(html: str) -> str | None:
    match = CSRF_RE.search(html)
    if not match:
        return None
    return match.group(1) or match.group(2)


def run_id() -> str:
    """A short random id that makes titles and accounts unique to one run."""
    return secrets.token_hex(4)


def fresh_titles(count: int, run: str, prefix: str = "") -> list[str]:
    """``count`` titles never generated before (they contain the run id), some in CJK."""
    return [f"{prefix}{TITLE_TOPICS[i % len(TITLE_TOPICS)]} · run {run} #{i + 1}" for i in range(count)]


def generate_body(title: str, mode: str = "sync") -> dict:
    return {"title": title, "mode": mode}
