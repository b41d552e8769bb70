"""A request that waits holds no pooled database connection.

Under a burst, requests that waited on something (another request's page
render, a password-hashing thread) while holding a connection emptied the
pool; the render they waited for then needed one too, and the worker stood
still until the pool timeout (found by a 500-user Locust run). These tests
check the rule itself, on SQLite and Postgres, and that the requests that
missed a page together share one render.
"""
from __future__ import annotations

import threading

from sqlalchemy import text

from aiblog import passwords
from aiblog.auth.accounts import authenticate, register
from aiblog.extensions import db
from aiblog.page_cache import read_through
from aiblog.page_cache.backends import LISTS
from aiblog.page_cache.serving import Fragment, serve_page
from devstack import wait_until

PASSWORD = "waiting-password-1234"


def checked_out(app) -> int:
    return db.engine.pool.checkedout()


def test_requests_waiting_for_a_render_hold_no_connection_and_share_it(app, monkeypatch):
    name = "waiting-probe"
    released = []
    release = read_through.release_db_connection
    monkeypatch.setattr(read_through, "release_db_connection", lambda: (released.append(1), release()))
    rendering, finish = threading.Event(), threading.Event()
    renders = []

    def slow_build() -> Fragment:
        renders.append(threading.get_ident())
        db.session.execute(text("SELECT 1"))  # the render needs a connection
        rendering.set()
        assert finish.wait(10)
        return Fragment("Probe", "<p>rendered once</p>")

    bodies, errors = [], []

    def reader():
        try:
            with app.test_request_context("/"):
                db.session.execute(text("SELECT 1"))  # this request already read the database
                bodies.append(serve_page(LISTS, name, slow_build).get_data(as_text=True))
                db.session.remove()
        except Exception as exc:  # reported below, with the main thread's assertions
            errors.append(exc)

    leader = threading.Thread(target=reader)
    leader.start()
    assert rendering.wait(10)
    waiters = [threading.Thread(target=reader) for _ in range(5)]
    for waiter in waiters:
        waiter.start()
    with app.app_context():
        # Every waiter read the database, then gave its connection back to
        # wait: only the render holds one.
        wait_until(lambda: len(released) == len(waiters), 5, "every waiter to start waiting")
        assert checked_out(app) == 1
        finish.set()
        for thread in [leader, *waiters]:
            thread.join(10)
        assert errors == []
        assert len(renders) == 1 and len(bodies) == 6
        assert all("rendered once" in body for body in bodies)
        assert checked_out(app) == 0
        assert name + ":page" not in read_through.renders_in_progress()  # nothing left behind


def test_a_failed_render_is_not_shared_and_the_next_request_renders_again(app):
    attempts = []

    def failing_build() -> Fragment:
        attempts.append(1)
        raise RuntimeError("the database went away")

    with app.test_request_context("/"):
        try:
            serve_page(LISTS, "failing-probe", failing_build)
        except RuntimeError:
            pass
        body = serve_page(LISTS, "failing-probe", lambda: Fragment("Back", "<p>back again</p>"))
        assert "back again" in body.get_data(as_text=True)
    assert attempts == [1]


def test_password_checks_hold_no_connection_while_hashing(app, monkeypatch):
    seen = []
    real_verify = passwords.verify_password

    def watched_verify(stored_hash: str, password: str) -> bool:
        seen.append(checked_out(app))
        return real_verify(stored_hash, password)

    monkeypatch.setattr(passwords, "verify_password", watched_verify)
    with app.app_context():
        register("patient", PASSWORD)
        db.session.remove()
        assert authenticate("patient", PASSWORD).username == "patient"
        assert authenticate("patient", "not the password") is None
        assert authenticate("nobody-at-all", PASSWORD) is None
        db.session.remove()
    assert seen == [0, 0]
