"""Security headers on every response (issue 12, item 7): a Content-Security-Policy
the pages satisfy, no framing, no MIME sniffing, a Referrer-Policy, HSTS in
production only, and personalised pages never stored by a browser or proxy.
(The browser tests check in Chromium that the policy blocks nothing.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import AuthActions, make_app

TEMPLATES = Path(__file__).resolve().parents[1] / "service" / "aiblog" / "templates"


def policy(response) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy", "")
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


def assert_common_headers(response):
    csp = policy(response)
    assert csp.get("frame-ancestors") == "'none'", response.headers
    assert csp.get("default-src") == "'self'"
    assert csp.get("script-src") == "'self'" and csp.get("object-src") == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers.get("X-Frame-Options") == "DENY"
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    assert response.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin"


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/post/999999", "/api/v1/posts", "/static/blog.css"])
def test_every_response_has_the_security_headers(client, path):
    response = client.get(path)
    assert_common_headers(response)
    assert "Strict-Transport-Security" not in response.headers  # development: plain HTTP


def test_anonymous_pages_keep_their_caching_and_personalised_pages_are_not_stored(client):
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    assert "no-store" not in anonymous.headers.get("Cache-Control", "")
    auth = AuthActions(client)
    auth.register()  # signs in
    for path in ("/", "/create", "/generate-blog"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers.get("Cache-Control") == "private, no-store", path
        assert_common_headers(response)


def test_production_adds_hsts(sqlite_url, monkeypatch):
    monkeypatch.setenv("BLOG_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 32)
    response = make_app(sqlite_url).test_client().get("/", base_url="https://localhost")
    assert response.headers.get("Strict-Transport-Security", "").startswith("max-age=")
    assert_common_headers(response)


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_have_nothing_inline_that_the_policy_blocks(template):
    text = template.read_text()
    assert not re.search(r"\son[a-z]+\s*=", text), "inline event handler"
    assert not re.search(r"\sstyle\s*=", text), "inline style attribute"
    assert not re.search(r"<style", text), "inline <style>"
    assert not re.search(r"<script(?![^>]*\ssrc=)", text), "inline <script>"
