"""Security headers on every response.

The Content-Security-Policy allows only the site's own scripts, styles and
fonts: the templates have no inline script, style or event handler (the
delete confirmation lives in static/blog.js). Images come from the site
itself (or data: URLs): the sanitiser drops external image sources, which
would let a post track its readers (markup.py).

Pages rendered for a logged-in user (their name, CSRF tokens, edit buttons)
are ``private, no-store``: no shared proxy or browser history keeps them.
Anonymous pages keep whatever caching they have.
"""
from __future__ import annotations

from flask import Flask, Response, g, request, session

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"
PERSONALISED_CACHE_CONTROL = "private, no-store"


def every_response(app: Flask) -> list[tuple[str, str]]:
    """The headers every response of ``app`` carries (the page fast path sends them too)."""
    headers = [
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if app.config["BLOG_ENV"] == "production":
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def init_app(app: Flask) -> None:
    cookie_name = app.config["SESSION_COOKIE_NAME"]
    always = every_response(app)

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        for name, value in always:
            headers.setdefault(name, value)
        if _personalised(cookie_name):
            headers["Cache-Control"] = PERSONALISED_CACHE_CONTROL
        return response


def _personalised(cookie_name: str) -> bool:
    """A user is logged in (session) or authenticated this request (an API token).

    The session is only opened when the request sent a session cookie: an
    anonymous page view neither pays for it nor gets ``Vary: Cookie``."""
    user = g.get("_login_user")
    if user is not None:
        return user.is_authenticated
    if g.get("api_user") is not None or g.get("api_caller") is not None:
        return True
    return cookie_name in request.cookies and "_user_id" in session
