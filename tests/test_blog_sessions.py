"""Sessions, API tokens and CSRF tokens (hardening item 8): tokens carry a
credentials version instead of part of the password hash, a password change
signs out every other session and revokes every token, a login starts a new
session, and a form's CSRF token expires."""
from __future__ import annotations

import base64
import json

import pytest
from itsdangerous import TimestampSigner

from aiblog.api.common import issue_token
from aiblog.auth.accounts import find_user
from aiblog.extensions import db
from tests.conftest import csrf_token, make_app
from tests.support.blog import PASSWORD, create_user

NEW_PASSWORD = "a brand new passphrase"


def login(client, username: str = "alice", password: str = PASSWORD):
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def logged_in(client) -> bool:
    return client.get("/create").status_code == 200


def token(client, password: str = PASSWORD) -> str:
    response = client.post("/api/v1/tokens", auth=("alice", password))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["token"]


def api_ok(client, api_token: str) -> bool:
    status = client.post("/api/v1/posts", json={"title": "Still mine?", "body": "Yes."},
                         headers={"Authorization": f"Bearer {api_token}"}).status_code
    assert status in (201, 401)
    return status == 201


def change_password(client, current: str, new: str = NEW_PASSWORD):
    form = csrf_token(client.get("/account/password").get_data(as_text=True))
    return client.post("/account/password", data={"current": current, "password": new, "confirm": new,
                                                  "csrf_token": form})


@pytest.fixture
def blog(database_url, redis_url):
    app = make_app(database_url, redis_url)
    create_user(app, "alice")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_token_carries_no_part_of_the_password_hash(blog):
    client = blog.test_client()
    api_token = token(client)
    payload = api_token.split(".")[0]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(claims) == {"uid", "v"} and claims["v"] == 1
    with blog.app_context():
        stored = find_user("alice").password_hash
    for start in range(0, len(stored) - 8):
        assert stored[start:start + 8] not in api_token


def test_a_password_change_signs_out_every_other_session_and_token(blog):
    here, elsewhere = blog.test_client(), blog.test_client()
    assert login(here).status_code == 302 and login(elsewhere).status_code == 302
    old_token = token(blog.test_client())
    assert api_ok(here, old_token)

    wrong = change_password(here, "not my password")
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    assert logged_in(elsewhere) and api_ok(here, old_token)  # nothing changed yet

    assert change_password(here, PASSWORD).status_code == 302
    assert logged_in(here)  # the session that changed it goes on
    assert not logged_in(elsewhere)  # every other one is signed out
    assert not api_ok(here, old_token)  # and every token issued before is revoked
    assert login(blog.test_client()).status_code == 401  # the old password is gone
    assert login(blog.test_client(), password=NEW_PASSWORD).status_code == 302
    assert api_ok(here, token(blog.test_client(), NEW_PASSWORD))


def test_the_cli_password_reset_revokes_too(blog):
    client = blog.test_client()
    assert login(client).status_code == 302
    old_token = token(blog.test_client())
    result = blog.test_cli_runner().invoke(args=["set-password", "alice", "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert "signed out" in result.output
    assert not logged_in(client) and not api_ok(client, old_token)
    assert blog.test_cli_runner().invoke(args=["set-password", "nobody", "--password", NEW_PASSWORD]).exit_code != 0


def test_a_login_starts_a_new_session(blog):
    client = blog.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by someone else"  # what a fixated session could carry
        before = session["csrf_token"]
    assert login(client).status_code == 302
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session.get("csrf_token") != before
        assert session["_user_id"].endswith(":1")  # id and credentials version


def test_a_session_from_before_versions_lasts_until_the_password_changes(blog):
    client = blog.test_client()
    with blog.app_context():
        user_id = find_user("alice").id
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)  # as the previous release stored it
        session["_fresh"] = True
    assert logged_in(client)
    blog.test_cli_runner().invoke(args=["set-password", "alice", "--password", NEW_PASSWORD])
    assert not logged_in(client)


def test_a_forms_csrf_token_expires(blog, monkeypatch):
    client = blog.test_client()
    assert blog.config["WTF_CSRF_TIME_LIMIT"] == 3600
    form = csrf_token(client.get("/login").get_data(as_text=True))
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + 3601)
    response = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf_token": form})
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    monkeypatch.undo()
    assert login(client).status_code == 302  # a fresh form works


def test_an_old_style_token_is_refused(blog):
    with blog.test_request_context():
        from aiblog.api.common import token_serializer

        user = find_user("alice")
        forged_shape = token_serializer().dumps({"uid": user.id, "pw": user.password_hash[-12:]})
        assert issue_token(user) != forged_shape
        db.session.remove()
    client = blog.test_client()
    assert not api_ok(client, forged_shape)
