"""Helpers for the blog tests: users, API tokens, post ids, HTML inspection."""
from __future__ import annotations

import functools
import re
from html.parser import HTMLParser

from aiblog import passwords
from aiblog.extensions import db
from aiblog.models import Role, User

PASSWORD = "correct horse battery"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "background", "poster"}
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:")
# Elements that run or load code; the blog's own pages use none of them
# except <script src="/static/..."> on the AI page.
ACTIVE_TAGS = {"script", "iframe", "object", "embed", "svg", "math", "style", "base", "meta", "link", "form"}


def post_id_from(response) -> int:
    """The id of the post a create form redirected to."""
    match = re.search(r"/post/(\d+)$", response.headers.get("Location", ""))
    assert match, f"expected a redirect to a post, got {response.status_code} {response.headers.get('Location')}"
    return int(match.group(1))


@functools.lru_cache(maxsize=None)
def _password_hash(password: str) -> str:
    return passwords.hash_password(password)


def create_user(app, username: str, password: str = PASSWORD, role: Role = Role.AUTHOR) -> int:
    """A user straight in the database, hashing each password once per session
    (argon2id is slow on purpose; the registration path has its own tests)."""
    with app.app_context():
        user = User(username=username, password_hash=_password_hash(password), role=role.value)
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        db.session.remove()
    return user_id


def token_for(app, user_id: int) -> str:
    """An API token as POST /api/v1/tokens would issue it, without the password check."""
    from aiblog.api.common import issue_token

    with app.test_request_context():
        token = issue_token(db.session.get(User, user_id))
        db.session.remove()
    return token


def api_token(client, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/tokens", auth=(username, password))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class _TagCollector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


def unsafe_markup(html: str, marker: str, allowed_active: set[str] = frozenset({"form", "link", "meta", "script"})) -> list[str]:
    """What in ``html`` could run code planted by a payload carrying ``marker``.

    The page's own forms, stylesheets and ``/static/`` scripts are allowed
    (``allowed_active`` tags are accepted when they do not carry the marker);
    any element or attribute that carries the payload's marker and could
    execute is reported, as is any script-scheme URL anywhere.
    """
    parser = _TagCollector()
    parser.feed(html)
    parser.close()
    problems = []
    for tag, attrs in parser.tags:
        rendered = f"<{tag} {attrs}>"
        if tag in ACTIVE_TAGS and (tag not in allowed_active or marker in rendered):
            problems.append(f"active element {rendered}")
        if tag == "script" and not (dict(attrs).get("src") or "").startswith("/static/"):
            problems.append(f"script not from /static/: {rendered}")
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on") and marker in value:
                problems.append(f"event handler {name}={value!r} on <{tag}>")
            squeezed = re.sub(r"[\s\x00-\x1f]", "", value).lower()
            if name in URL_ATTRIBUTES and squeezed.startswith(SCRIPT_SCHEMES):
                problems.append(f"script URL {name}={value!r} on <{tag}>")
            if name == "style" and marker in value:
                problems.append(f"style attribute {value!r} on <{tag}>")
    # A script body that only our own templates may have.
    for match in re.finditer(r"<script\b[^>]*>(.*?)</script", html, re.S | re.I):
        if marker in match.group(1):
            problems.append(f"script body {match.group(0)[:80]!r}")
    return problems


class LiveUser:
    """A browser-like client of a live server: cookies, CSRF tokens, and a new
    connection for every request (``Connection: close``), so that gunicorn
    hands the requests to different workers."""

    def __init__(self, base_url: str):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=15, headers={"Connection": "close"})

    def csrf(self, path: str) -> str:
        from tests.conftest import csrf_token

        return csrf_token(self.http.get(path).text)

    def submit(self, path: str, **fields: str):
        """Fill in the form at ``path`` and send it, as a browser would."""
        return self.http.post(path, data={**fields, "csrf_token": self.csrf(path)})

    def login(self, username: str, password: str = PASSWORD) -> "LiveUser":
        response = self.submit("/login", username=username, password=password)
        assert response.status_code == 302, response.text[:500]
        return self

    def get(self, path: str):
        return self.http.get(path)

    def close(self) -> None:
        self.http.close()


def nav_user(html: str) -> str | None:
    """The username shown in the page's navigation bar (None: anonymous)."""
    match = re.search(r'class="nav-user">([^<]*)<', html)
    return match.group(1) if match else None
