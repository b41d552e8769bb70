"""Serving cacheable pages to a request.

Anonymous visitors get the whole rendered page from the cache (from the
process's own memory on a hit, no database, no template; see
``backends.py``), compressed once (brotli and gzip), with an ETag and caching a CDN may use
(``http_cache.py``). Logged-in users get the cached content fragment wrapped in
a freshly rendered layout, so their name, CSRF tokens and edit buttons are
never shared with anyone else.

Whoever wrote gets a short-lived cookie (``FRESH_COOKIE``): their next reads
go past the per-process copies to the shared versions, so they never see a
page older than their own write on any replica.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from flask import Flask, Response, g, has_request_context, render_template, request, session
from flask_login import current_user
from markupsafe import Markup

from ..security_headers import PERSONALISED_CACHE_CONTROL
from . import http_cache
from .read_through import cached, pages_invalidated

FRESH_COOKIE = "aiblog_fresh"
FRESH_SECONDS = 10


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


def anonymous_name(name: str) -> str:
    """The cache name of the whole page anonymous readers get (``name`` is the page's)."""
    return f"{name}:{http_cache.STORE_FORMAT}"


def _personalized() -> bool:
    return current_user.is_authenticated or bool(session.get("_flashes"))


def reader_wrote_recently() -> bool:
    """This request's reader wrote within ``FRESH_SECONDS``: read past the per-process copies."""
    return FRESH_COOKIE in request.cookies


def serve_page(scope: str, name: str, build: Callable[[], Fragment], **layout_context) -> Response | str:
    fresh = reader_wrote_recently()
    if not _personalized():  # the whole page, compressed once, with its ETag (http_cache.py)
        stored = cached(scope, anonymous_name(name), lambda: http_cache.store(_render(build(), layout_context).encode()),
                        fresh)
        return http_cache.respond(stored, request, fresh)
    raw = cached(scope, name + ":frag", lambda: build().dumps(), fresh)
    # Theirs alone (their name, a flash): no browser history or shared cache keeps it.
    return Response(_render(Fragment.loads(raw), layout_context), mimetype="text/html",
                    headers={"Cache-Control": PERSONALISED_CACHE_CONTROL})


def _render(fragment: Fragment, layout_context: dict) -> str:
    return render_template(
        "page.html", page_title=fragment.title, content=Markup(fragment.html),
        owner_id=fragment.owner_id, **layout_context,
    )


def _note_write(app, scopes) -> None:
    if has_request_context():
        g.aiblog_wrote_pages = True


def _mark_writer(response: Response) -> Response:
    if g.get("aiblog_wrote_pages"):
        response.set_cookie(FRESH_COOKIE, "1", max_age=FRESH_SECONDS, httponly=True, samesite="Lax",
                            secure=bool(request.environ.get("wsgi.url_scheme") == "https"))
    return response


def init_app(app: Flask) -> None:
    pages_invalidated.connect(_note_write, app)
    app.after_request(_mark_writer)
