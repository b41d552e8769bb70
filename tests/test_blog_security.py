"""Security properties: password storage, cookies, production configuration,
redirects and error pages (rate limits: test_blog_rate_limits.py)."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess

import pytest
import redis
from sqlalchemy import select

from aiblog import config, create_app
from aiblog.extensions import db
from aiblog.models import User
from tests.conftest import AuthActions, csrf_token, make_app
from tests.support.blog import PASSWORD, bearer, create_user, token_for
from devstack import REPO, VENV_BIN, free_port
from tests.conftest import blog_env


def test_passwords_are_stored_as_salted_argon2id_hashes(app, client, auth):
    auth.register("alice", PASSWORD)
    auth.logout()
    auth.register("bob", PASSWORD)
    with app.app_context():
        hashes = db.session.scalars(select(User.password_hash).order_by(User.id)).all()
        db.session.remove()
    assert all(h.startswith("$argon2id$") and PASSWORD not in h for h in hashes)
    assert hashes[0] != hashes[1]  # salted
    token = token_for(app, 1)
    assert "password" not in client.get("/api/v1/posts", headers=bearer(token)).get_data(as_text=True)


def test_session_cookie_is_http_only_and_secure_in_production(client, auth, sqlite_url):
    response = auth.register()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    production = make_app(sqlite_url, BLOG_ENV="production", SECRET_KEY=secrets.token_hex(32))
    cookie = production.test_client().get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie


# -- production configuration ----------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "", config.DEFAULT_SECRET_KEY, "short-secret"])
def test_production_refuses_a_missing_or_default_secret_key(monkeypatch, secret):
    environ = {"BLOG_ENV": "production"} | ({} if secret is None else {"SECRET_KEY": secret})
    with pytest.raises(config.ConfigError, match="SECRET_KEY must be set to a random value"):
        config.load(environ)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("BLOG_ENV", "production")
    if secret is not None:
        monkeypatch.setenv("SECRET_KEY", secret)
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": "sqlite://", "REDIS_URL": ""})


def test_production_accepts_a_real_secret_key():
    values = config.load({"BLOG_ENV": "production", "SECRET_KEY": secrets.token_hex(32)})
    assert values["BLOG_ENV"] == "production"
    assert config.load({})["SECRET_KEY"] == config.DEFAULT_SECRET_KEY  # development keeps its default


def _without_secret(**overrides) -> dict[str, str]:
    env = blog_env(**overrides)
    env.pop("SECRET_KEY")
    return env


def test_cli_and_gunicorn_exit_with_a_clear_message_without_a_secret_key(tmp_path):
    env = _without_secret(BLOG_ENV="production", DATABASE_URL=f"sqlite:///{tmp_path}/blog.sqlite3",
                          PORT=str(free_port()), METRICS_ENABLED="false")
    message = "SECRET_KEY must be set to a random value"
    settings = subprocess.run([str(VENV_BIN / "aiblog"), "settings"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert settings.returncode != 0 and message in settings.stderr and "Traceback" not in settings.stderr
    gunicorn = subprocess.run([str(VENV_BIN / "gunicorn"), "-c", str(REPO / "service" / "gunicorn.conf.py"), "aiblog:create_app()"],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert gunicorn.returncode != 0 and message in gunicorn.stderr and "Traceback" not in gunicorn.stderr

    bad_value = subprocess.run([str(VENV_BIN / "aiblog"), "settings"], env=blog_env(WEB_CONCURRENCY="0"),
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad_value.returncode != 0 and "WEB_CONCURRENCY: expected a positive integer" in bad_value.stderr
    development = subprocess.run([str(VENV_BIN / "aiblog"), "settings"], env=_without_secret(), cwd=REPO,
                                 capture_output=True, text=True, timeout=60)
    assert development.returncode == 0 and "SECRET_KEY=(development default)" in development.stdout


def _serve_briefly(env: dict[str, str], seconds: float = 30) -> tuple[int | None, str]:
    """Start gunicorn with ``env``; its exit code and stderr, or ``None`` if it is
    still serving after ``seconds`` (then it is stopped, workers included)."""
    process = subprocess.Popen([str(VENV_BIN / "gunicorn"), "--config", "python:aiblog.gunicorn_conf", "aiblog:create_app()"],
                               env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=seconds)
        return process.returncode, stderr
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return None, process.communicate()[1]


@pytest.mark.parametrize("blog_env_name", ["development", "production"])
def test_the_default_secret_never_serves_beyond_loopback(tmp_path, blog_env_name):
    env = _without_secret(BLOG_ENV=blog_env_name, BIND_HOST="0.0.0.0", DATABASE_URL=f"sqlite:///{tmp_path}/blog.sqlite3",
                          PORT=str(free_port()), METRICS_ENABLED="false")
    code, stderr = _serve_briefly(env)
    assert code is not None and code != 0, "gunicorn served on 0.0.0.0 with the public development key"
    assert "SECRET_KEY" in stderr and "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "SECRET_KEY" in line]) == 1  # one clear line


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_the_default_secret_is_allowed_on_loopback(host):
    config.refuse_public_default_secret(config.load({"BIND_HOST": host}))  # no error


def test_a_real_secret_serves_beyond_loopback():
    values = config.load({"BIND_HOST": "0.0.0.0", "SECRET_KEY": secrets.token_hex(32)})
    config.refuse_public_default_secret(values)  # no error
    with pytest.raises(config.ConfigError, match="BIND_HOST"):
        config.refuse_public_default_secret(config.load({"BIND_HOST": "10.0.0.5"}))


# -- redirects -------------------------------------------------------------------------------

OFFSITE = ["https://evil.example/", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
           "/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "http:/evil.example", " //evil.example",
           "javascript:alert(1)", "/\x00/evil.example"]


@pytest.mark.parametrize("target", OFFSITE, ids=lambda t: repr(t))
def test_login_never_redirects_off_site(sqlite_url, target):
    app = make_app(sqlite_url)
    create_user(app, "alice")
    client = app.test_client()
    token = AuthActions(client).form("/login")
    response = client.post("/login", query_string={"next": target},
                           data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_login_follows_a_same_site_next(sqlite_url):
    app = make_app(sqlite_url)
    create_user(app, "alice")
    client = app.test_client()
    assert client.get("/create").headers["Location"].startswith("/login?next=")
    token = AuthActions(client).form("/login")
    response = client.post("/login?next=/create", data={"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/create"


# -- error pages ------------------------------------------------------------------------------

def test_error_pages_are_html_on_the_site_and_json_under_the_api(sqlite_url):
    app = make_app(sqlite_url, LOGIN_RATE_LIMIT="1 per minute")

    def explode():
        raise RuntimeError("a bug")

    app.add_url_rule("/test-only/explode", "explode", explode)
    app.add_url_rule("/api/v1/test-only/explode", "api_explode", explode)
    alice, bob = create_user(app, "alice"), create_user(app, "bob")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(bob)
    headers = bearer(token_for(app, bob))
    post_id = app.test_client().post("/api/v1/posts", json={"title": "t", "body": "b"},
                                     headers=bearer(token_for(app, alice))).get_json()["id"]
    big = "x" * (1024 * 1024 + 1)
    anonymous = app.test_client()
    anonymous.post("/api/v1/tokens", auth=("carol", "wrong"))
    login_token = AuthActions(anonymous).form("/login")
    anonymous.post("/login", data={"username": "carol", "password": "wrong", "csrf_token": login_token})
    cases = {
        404: (lambda: client.get("/no-such-page"), lambda: client.get("/api/v1/no-such-thing")),
        403: (lambda: client.get("/admin/users"), lambda: client.delete(f"/api/v1/posts/{post_id}", headers=headers)),
        405: (lambda: client.delete("/"), lambda: client.put("/api/v1/posts", headers=headers)),
        413: (lambda: client.post("/create", data={"title": "t", "body": big}),
              lambda: client.post("/api/v1/posts", data=big, headers=headers, content_type="application/json")),
        429: (lambda: anonymous.post("/login", data={"username": "carol", "password": "wrong", "csrf_token": login_token}),
              lambda: anonymous.post("/api/v1/tokens", auth=("carol", "wrong"))),
        500: (lambda: client.get("/test-only/explode"), lambda: client.get("/api/v1/test-only/explode")),
    }
    for code, (site, api) in cases.items():
        page = site()
        assert page.status_code == code and page.mimetype == "text/html", code
        html = page.get_data(as_text=True)
        assert f'<p class="error-code">{code}</p>' in html and "Back to the blog" in html, code
        assert "Traceback" not in html and "a bug" not in html
        response = api()
        assert response.status_code == code and response.is_json, code
        body = response.get_json()
        assert body["status"] == code and body["error"] and body["message"], code
        assert "a bug" not in body["message"]
    assert client.delete("/").headers["Allow"]
