"""Overload is answered as overload: when every database connection of a
worker stays busy for the pool's whole timeout, the blog answers 503 with
Retry-After (HTML and API), never a 500 that claims a bug, and never a page
that waits for the database a second time."""
from __future__ import annotations

import base64
import logging
import threading
import time

import pytest
from sqlalchemy.pool import QueuePool

from aiblog.errors import OVERLOAD_RETRY_AFTER_S
from aiblog.extensions import db
from tests.conftest import csrf_token, make_app

POOL_TIMEOUT_S = 10  # the blog's pool_timeout (aiblog._engine_options)


@pytest.mark.slow  # waits out one real pool timeout
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_exhausted_database_pool_answers_503_not_500(database_url, redis_url, caplog):
    app = make_app(database_url, redis_url, DB_POOL_SIZE=1)  # 1 connection + 2 overflow
    with app.app_context():
        from aiblog.auth.accounts import register

        register("pool-writer", "pool-password-1")
        db.session.commit()
        engine = db.engine
    assert isinstance(engine.pool, QueuePool) and engine.pool.timeout() == POOL_TIMEOUT_S
    web = app.test_client()
    form = {"username": "pool-writer", "password": "pool-password-1", "csrf_token": csrf_token(web.get("/login").text)}
    assert web.post("/login", data=form).status_code == 302
    api = app.test_client()
    basic = base64.b64encode(b"pool-writer:pool-password-1").decode()
    token = api.post("/api/v1/tokens", headers={"Authorization": f"Basic {basic}"}).get_json()["token"]

    held = [engine.connect() for _ in range(3)]  # every connection the pool may open
    answers: dict[str, object] = {}
    requests = {
        # A logged-in page: loading the user needs a connection.
        "page": lambda: web.get("/create"),
        # An API call: checking the token loads its user.
        "api": lambda: api.post("/api/v1/posts", headers={"Authorization": f"Bearer {token}"},
                                json={"title": "Under overload", "body": "Never stored."}),
    }

    def call(name: str, request) -> None:
        try:
            answers[name] = request()
        except Exception as exc:  # e.g. the error page itself timing out on the pool
            answers[name] = exc

    threads = [threading.Thread(target=call, args=item) for item in requests.items()]
    # An in-process migration (alembic's fileConfig) disables loggers that existed before it.
    logging.getLogger("aiblog.errors").disabled = False
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="aiblog.errors"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(POOL_TIMEOUT_S * 3)
    waited = time.monotonic() - began
    for connection in held:
        connection.close()

    page, api_answer = answers.get("page"), answers.get("api")
    assert not isinstance(page, (Exception, type(None))), f"no answer to the page: {page!r}"
    assert not isinstance(api_answer, (Exception, type(None))), f"no answer to the API call: {api_answer!r}"
    assert page.status_code == 503 and page.headers["Retry-After"] == str(OVERLOAD_RETRY_AFTER_S)
    assert "The site is busy right now" in page.text and "Log out" not in page.text
    assert api_answer.status_code == 503 and api_answer.headers["Retry-After"] == str(OVERLOAD_RETRY_AFTER_S)
    assert api_answer.get_json()["status"] == 503
    # One pool timeout each, not two: the error page did not wait for the database again.
    assert POOL_TIMEOUT_S * 0.9 <= waited < POOL_TIMEOUT_S * 1.8
    assert "database pool exhausted" in caplog.text and "unhandled error" not in caplog.text
    # Once connections are free the same requests succeed.
    assert web.get("/create").status_code == 200
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
