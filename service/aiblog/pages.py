"""Serving cacheable pages.

Anonymous visitors get the whole rendered page from the cache (one Redis
round trip, no database, no template). Logged-in users get the cached content
fragment wrapped in a freshly rendered layout, so their name, CSRF tokens and
edit buttons are never shared with anyone else.
"""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from flask import Response, g, render_template, request, session
from flask_login import current_user
from markupsafe import Markup

from .page_cache import FRESH_COOKIE, FRESH_SECONDS
from .services import services


@dataclass
class Fragment:
    title: str
    html: str
    owner_id: int | None = None  # author of the page's post, for edit controls

    def dumps(self) -> bytes:
        return json.dumps([self.title, self.html, self.owner_id]).encode()

    @classmethod
    def loads(cls, raw: bytes) -> "Fragment":
        title, html, owner_id = json.loads(raw)
        return cls(title, html, owner_id)


def _personalized() -> bool:
    return current_user.is_authenticated or bool(session.get("_flashes"))


def invalidate(*scopes: str) -> None:
    """Drop the cached pages of ``scopes`` after a committed write, and mark
    the response so the writer's next requests read the freshest generations."""
    services().pages.invalidate(*scopes)
    g.aiblog_wrote_pages = True


def mark_writer(response: Response) -> Response:
    if g.get("aiblog_wrote_pages"):
        response.set_cookie(FRESH_COOKIE, "1", max_age=FRESH_SECONDS, httponly=True, samesite="Lax",
                            secure=bool(request.environ.get("wsgi.url_scheme") == "https"))
    return response


def serve_page(scope: str, name: str, build: Callable[[], Fragment], **layout_context) -> Response | str:
    cache = services().pages
    fresh = FRESH_COOKIE in request.cookies
    if not _personalized():
        key, body = cache.get(scope, name + ":page", fresh=fresh)
        if body is None:
            body = _fill_once(cache, scope, name + ":page", fresh,
                              lambda: _render(build(), layout_context).encode())
        return Response(body, mimetype="text/html")
    key, raw = cache.get(scope, name + ":frag", fresh=fresh)
    if raw is None:
        raw = _fill_once(cache, scope, name + ":frag", fresh, lambda: build().dumps())
    return _render(Fragment.loads(raw), layout_context)


class _KeyedLocks:
    """One lock per key, dropped when nobody holds or waits for it."""

    def __init__(self):
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: str):
        with self._guard:
            lock, users = self._locks.get(key, (None, 0))
            lock = lock or threading.Lock()
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


_filling = _KeyedLocks()


def _fill_once(cache, scope: str, name: str, fresh: bool, make: Callable[[], bytes]) -> bytes:
    """After a write invalidates a busy page, every request in flight misses
    at once; only the first of this process renders it, the others wait for
    that result instead of all querying the database."""
    with _filling.hold(name):
        key, value = cache.get(scope, name, fresh=fresh, record=False)  # counted once, by the caller
        if value is None:
            value = make()
            cache.set(key, value)
        return value


def _render(fragment: Fragment, layout_context: dict) -> str:
    return render_template(
        "page.html", page_title=fragment.title, content=Markup(fragment.html),
        owner_id=fragment.owner_id, **layout_context,
    )
