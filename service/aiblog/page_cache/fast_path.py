"""Cached anonymous pages answered before Flask.

A cached anonymous page costs little to send, but a request that reaches
Flask also pays for the request context, routing, the session, the login
manager, CSRF's hook and the response object, about 1 ms of CPU here against
the page's few microseconds. This WSGI middleware answers the requests that
need none of it, and hands every other request to Flask unchanged:

- ``GET /``, ``GET /?page=N`` and ``GET /post/<id>``, in their canonical
  spelling (anything else is Flask's to route: ``/post/007``, ``/?page=2&x``);
- from a client that sends **no cookie at all**: any cookie may be a session
  (a logged-in user, a flash waiting in it) or the writer's freshness cookie,
  and those are personalised or must read past this process's copies
  (``serving.py``), as ``Vary: Cookie`` tells shared caches too;
- with no ``If-Match``, ``If-Range`` or ``Range`` (Flask's conditional logic
  answers those; ``If-None-Match`` is answered here);
- under a trusted Host (``TRUSTED_HOSTS``); Flask refuses the others;
- when this process holds the page and may trust its copy
  (``peek``: no I/O; a miss goes to Flask, which renders and stores it).

The answer is the one Flask would give: the same body, caching headers
(``http_cache.headers``), security headers (``security_headers.every_response``)
and request metrics with the route template as ``url_rule``
(``RequestMetrics.observe``). tests/test_blog_fast_path.py holds the two
paths' answers side by side.
"""
from __future__ import annotations

import re
from time import perf_counter
from typing import Callable

from flask import Flask
from werkzeug.http import parse_etags
from werkzeug.sansio.utils import host_is_trusted

from .. import security_headers
from ..models import ID_MAX
from . import http_cache
from .backends import home_page, post_page
from .serving import anonymous_name

_POST = re.compile(r"/post/([1-9][0-9]{0,18})")
_PAGE_QUERY = re.compile(r"page=([1-9][0-9]{0,5})")
_MAX_PAGE = 100_000  # the views' bound (posts/routes._page_number)
# A request with any of these is Flask's: a cookie may be a session, the others
# ask for conditional handling beyond If-None-Match.
_FLASK_ONLY = ("HTTP_COOKIE", "HTTP_IF_MATCH", "HTTP_IF_RANGE", "HTTP_RANGE")
_HTML = "text/html; charset=utf-8"


class CachedPageFastPath:
    """WSGI middleware in front of ``app.wsgi_app``; ``served`` counts its answers."""

    def __init__(self, app: Flask, wsgi_app: Callable):
        self.wsgi_app = wsgi_app
        self.app = app
        self.trusted_hosts = app.config["TRUSTED_HOSTS"]  # parsed by trusted_hosts.init_app
        self.security_headers = security_headers.every_response(app)
        rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
        self.home_rule, self.post_rule = rules["posts.index"], rules["posts.show"]
        metrics = app.extensions.get("aiblog_metrics")
        self.observe = metrics.observe if metrics is not None else None
        self.served = 0

    def __call__(self, environ, start_response):
        started = perf_counter()
        found = self._cached_page(environ)
        if found is None:
            return self.wsgi_app(environ, start_response)
        raw, rule = found
        page = http_cache.unpack(raw)
        encoding = http_cache.preferred_encoding(environ.get("HTTP_ACCEPT_ENCODING"))
        headers = http_cache.headers(page, encoding, wrote_recently=False)
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if if_none_match and parse_etags(if_none_match).contains_weak(page.tag(encoding)):
            status, body = 304, b""
            headers = [h for h in headers if h[0] != "Content-Encoding"]  # an entity header (Werkzeug drops it)
        else:
            status, body = 200, page.body(encoding)
            headers = [("Content-Type", _HTML), ("Content-Length", str(len(body))), *headers]
        start_response("200 OK" if status == 200 else "304 Not Modified", headers + self.security_headers)
        self.served += 1
        if self.observe is not None:
            self.observe("GET", rule, status, perf_counter() - started)
        return [body]

    def _cached_page(self, environ) -> tuple[bytes, str] | None:
        """The stored page and route template this request may be answered with here, or None."""
        if environ.get("REQUEST_METHOD") != "GET" or any(name in environ for name in _FLASK_ONLY):
            return None
        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
        if path == "/":
            if not query:
                page = 1
            else:
                match = _PAGE_QUERY.fullmatch(query)
                if match is None or int(match[1]) > _MAX_PAGE:
                    return None
                page = int(match[1])
            key, rule = home_page(page), self.home_rule
        else:
            match = _POST.fullmatch(path)
            if match is None or query or int(match[1]) > ID_MAX:
                return None
            key, rule = post_page(int(match[1])), self.post_rule
        if self.trusted_hosts is not None and not host_is_trusted(self._host(environ), self.trusted_hosts):
            return None
        pages = self.app.extensions["aiblog"].pages
        raw = pages.peek(key[0], anonymous_name(key[1]))
        return None if raw is None else (raw, rule)

    @staticmethod
    def _host(environ) -> str:
        # What Flask's request.host is without a proxy fix: the Host header, else the server's name.
        return environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")


def init_app(app: Flask) -> None:
    """Install the fast path in front of everything else (after the other extensions)."""
    app.wsgi_app = CachedPageFastPath(app, app.wsgi_app)
