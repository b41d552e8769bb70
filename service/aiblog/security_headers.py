"""Security headers on every response.

The Content-Security-Policy allows only the site's own scripts, styles and
fonts: the templates have no inline script, style or event handler (the
delete confirmation lives in static/blog.js). Images may also come over
HTTPS, since posts may show external images (see the sanitiser in markup.py).

Pages rendered for a logged-in user (their name, CSRF tokens, edit buttons)
are ``private, no-store``: no shared proxy or browser history keeps them.
Anonymous pages keep whatever caching they have.
"""
from __future__ import annotations

from flask import Flask, Response, g, session

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HSTS = "max-age=31536000; includeSubDomains"
PERSONALISED_CACHE_CONTROL = "private, no-store"


def init_app(app: Flask) -> None:
    production = app.config["BLOG_ENV"] == "production"

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if production:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if _personalised():
            headers["Cache-Control"] = PERSONALISED_CACHE_CONTROL
        return response


def _personalised() -> bool:
    """A user is logged in (session) or authenticated this request (an API token)."""
    user = g.get("_login_user")
    if user is not None and user.is_authenticated:
        return True
    return "_user_id" in session
