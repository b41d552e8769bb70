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
