"""Shared fixtures, in the spirit of Flask's tutorial: ``app``, ``client``,
``auth``; plus real Redis and Postgres servers started for the session."""
from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import tempfile

import pytest
from sqlalchemy import text

from aiblog import create_app, sqlalchemy_url
from aiblog.extensions import db
from aiblog.services import services
from devstack import Postgres, Redis, blog_environment

# Fixtures of the performance-suite tests (one blog stack for the whole
# session) and of the LLM tests (one simulator per test module).
pytest_plugins = ("tests.support.perf", "tests.support.llm")

TEST_SECRET_KEY = "test-secret-key-0123456789"

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


def blog_env(**settings) -> dict[str, str]:
    """The environment of a blog process in the tests: the caller's without
    the blog's own variables, the test secret key, and ``settings``."""
    return blog_environment(**{"SECRET_KEY": TEST_SECRET_KEY, "LOG_LEVEL": "warning", **settings})


@pytest.fixture(scope="session")
def redis_server():
    with Redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    if not redis_server.running:  # a test stopped it
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server():
    with Postgres() as server:
        yield server


@pytest.fixture(scope="session")
def _postgres_schema(postgres_server):
    url = postgres_server.create_database("aiblog_test")
    app = create_app({"DATABASE_URL": url, "REDIS_URL": ""})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    app = create_app({"DATABASE_URL": f"sqlite:///{path}", "REDIS_URL": ""})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """A migrated, empty database: SQLite file or real Postgres."""
    if request.param == "sqlite":
        path = tmp_path / "blog.sqlite3"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("_postgres_schema")
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE posts, users RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path, _sqlite_template):
    path = tmp_path / "blog.sqlite3"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


# Page-cache version files (and their machine-id files) of the apps the
# tests make: one folder for the session, removed at its end.
_VERSIONS_DIR = tempfile.mkdtemp(prefix="aiblog-test-versions-")
atexit.register(shutil.rmtree, _VERSIONS_DIR, ignore_errors=True)


def fresh_versions_file() -> str:
    """A new version-counter file: an app using it is another machine to the cache."""
    return os.path.join(_VERSIONS_DIR, secrets.token_hex(8))


def make_app(database_url: str, redis_url: str = "", **overrides):
    versions = fresh_versions_file()
    app = create_app({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET_KEY,
        "TESTING": True, "PAGE_CACHE_VERSIONS_FILE": versions, **overrides,
    })
    with app.app_context():
        services().limits.reset()
    return app


@pytest.fixture
def app(database_url, redis_url):
    app = make_app(database_url, redis_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


class AuthActions:
    def __init__(self, client):
        self.client = client

    def form(self, path: str) -> str:
        response = self.client.get(path)
        return csrf_token(response.get_data(as_text=True))

    def register(self, username="alice", password="correct horse battery", confirm=None):
        return self.client.post("/register", data={
            "username": username, "password": password, "confirm": confirm or password,
            "csrf_token": self.form("/register")})

    def login(self, username="alice", password="correct horse battery"):
        return self.client.post("/login", data={
            "username": username, "password": password, "csrf_token": self.form("/login")})

    def logout(self):
        token = csrf_token(self.client.get("/").get_data(as_text=True))
        return self.client.post("/logout", data={"csrf_token": token})

    def write(self, title="Hello", body="Some *Markdown*"):
        return self.client.post("/create", data={"title": title, "body": body, "csrf_token": self.form("/create")})


@pytest.fixture
def auth(client):
    return AuthActions(client)
