"""Serving cacheable pages.

Anonymous visitors get the whole rendered page from the cache (one Redis
round trip, no database, no template). Logged-in users get the cached content
fragment wrapped in a freshly rendered layout, so their name, CSRF tokens and
edit buttons are never shared with anyone else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from flask import Response, render_template, session
from flask_login import current_user
from markupsafe import Markup

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


def serve_page(scope: str, name: str, build: Callable[[], Fragment], **layout_context) -> Response | str:
    cache = services().pages
    if not _personalized():
        key, body = cache.get(scope, name + ":page")
        if body is None:
            fragment = build()
            body = _render(fragment, layout_context).encode()
            cache.set(key, body)
        return Response(body, mimetype="text/html")
    key, raw = cache.get(scope, name + ":frag")
    if raw is None:
        fragment = build()
        cache.set(key, fragment.dumps())
    else:
        fragment = Fragment.loads(raw)
    return _render(fragment, layout_context)


def _render(fragment: Fragment, layout_context: dict) -> str:
    return render_template(
        "page.html", page_title=fragment.title, content=Markup(fragment.html),
        owner_id=fragment.owner_id, **layout_context,
    )
