"""The Host names the blog answers under (TRUSTED_HOSTS), and redirects that
never name a host.

Werkzeug's routing redirects (merging slashes: ``GET /post//6``; a missing
trailing slash) build an absolute URL from the Host header, so behind a cache
that forwards any Host, ``Host: evil.example`` could plant a redirect to
evil.example for everyone. Two fences: those redirects carry a relative
``Location`` (RFC 9110 allows it; the browser stays on the host it asked),
and with TRUSTED_HOSTS set Flask refuses any other Host with 400 before any
of the blog's hooks or views run.
"""
from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, abort, redirect, request
from werkzeug.exceptions import SecurityError
from werkzeug.routing import RequestRedirect

# What Werkzeug can match (werkzeug.sansio.utils.host_is_trusted): a name or
# IPv4 address, no port; a leading dot accepts every subdomain. It cannot
# match an IPv6 literal, so one is refused rather than silently never matching.
# It compares lower-case names (what browsers and ingress controllers send).
_ENTRY = re.compile(r"\.?[a-z0-9-]+(\.[a-z0-9-]+)*")
UNTRUSTED_HOST_MESSAGE = "This site is not served under that host name."


def parse(value: str) -> list[str] | None:
    """TRUSTED_HOSTS as Flask takes it: None (any host) when empty. Raises
    ValueError naming the first entry Werkzeug could never match."""
    entries = [entry.strip().lower() for entry in value.split(",") if entry.strip()]
    for entry in entries:
        if not _ENTRY.fullmatch(entry):
            raise ValueError(f"{entry!r} is not a host name, a .suffix or an IPv4 address "
                             "(no port, no scheme; IPv6 addresses cannot be matched: give a name)")
    return entries or None


def setting(value: str) -> str:
    parse(value)  # validates; init_app parses it again
    return value


def is_untrusted_host() -> bool:
    """The current request's Host is not in TRUSTED_HOSTS (it has no URL adapter then)."""
    return isinstance(request.routing_exception, SecurityError)


def init_app(app: Flask) -> None:
    app.config["TRUSTED_HOSTS"] = parse(app.config["TRUSTED_HOSTS"] or "")

    def answer_routing_by_host():
        # Before the page cache, the rate limits and everything else that would
        # answer (or build URLs) for a host the blog is not.
        if is_untrusted_host():
            abort(400, UNTRUSTED_HOST_MESSAGE)
        routing = request.routing_exception
        if isinstance(routing, RequestRedirect):  # Werkzeug's own answer names the host, body included
            return redirect(urlunsplit(urlsplit(routing.new_url)._replace(scheme="", netloc="")), routing.code)
        return None

    def store_nothing_for_an_untrusted_host(response: Response) -> Response:
        if is_untrusted_host():
            response.headers["Cache-Control"] = "no-store"
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, answer_routing_by_host)
    app.after_request(store_nothing_for_an_untrusted_host)
