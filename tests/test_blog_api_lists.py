"""Cheap anonymous reads (hardening item 6), on SQLite and Postgres with
Redis: keyset pagination next to page numbers, a total counted once per
write, list answers kept in the page cache, lists without the full HTML
unless asked, a per-address limit, and pages past the end answered without
an offset query."""
from __future__ import annotations

import base64
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from aiblog.extensions import db
from tests.conftest import make_app
from tests.support.blog import bearer, create_user, token_for


@pytest.fixture
def blog(database_url, redis_url):
    app = make_app(database_url, redis_url, POSTS_PER_PAGE=5)
    headers = bearer(token_for(app, create_user(app, "alice")))
    client = app.test_client()
    for number in range(12):
        assert client.post("/api/v1/posts", json={"title": f"Post {number}", "body": f"Body {number} " + "word " * 100},
                           headers=headers).status_code == 201
    yield app, client, headers
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@contextmanager
def statements(app):
    """The SQL the app runs meanwhile."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def walk_by_cursor(client, per_page: int = 5) -> list[int]:
    ids, cursor = [], None
    while True:
        answer = client.get("/api/v1/posts", query_string={"per_page": per_page, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        body = answer.get_json()
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def test_cursors_walk_the_same_order_as_pages_and_do_not_shift_under_new_posts(blog):
    app, client, headers = blog
    by_page = [item["id"] for page in (1, 2, 3) for item in client.get(f"/api/v1/posts?page={page}").get_json()["items"]]
    assert len(by_page) == 12 and walk_by_cursor(client) == by_page
    first = client.get("/api/v1/posts").get_json()
    assert first["page"] == 1 and first["next_cursor"]
    second = client.get(f"/api/v1/posts?cursor={first['next_cursor']}").get_json()
    assert second["page"] is None and [i["id"] for i in second["items"]] == by_page[5:10]
    # A new post arrives between two requests: the cursor's next page is unchanged.
    client.post("/api/v1/posts", json={"title": "Newest", "body": "new"}, headers=headers)
    again = client.get(f"/api/v1/posts?cursor={first['next_cursor']}").get_json()
    assert [i["id"] for i in again["items"]] == by_page[5:10] and again["total"] == 13
    assert [i["id"] for i in client.get("/api/v1/posts?page=2").get_json()["items"]] == by_page[4:9]  # pages shift


@pytest.mark.parametrize("query, message", [
    ("cursor=not-a-cursor", "not one this API gave out"),
    ("cursor=" + base64.urlsafe_b64encode(b"yesterday|1").decode(), "not one this API gave out"),
    ("cursor=" + base64.urlsafe_b64encode(b"2026-01-01T00:00:00|x").decode(), "not one this API gave out"),
    ("cursor=" + "A" * 201, "not one this API gave out"),
    ("cursor=", "not one this API gave out"),
    ("page=2&cursor=abc", "not both"),
    ("include=password_hash", "'include' takes body and/or html"),
    ("include=body,secrets", "'include' takes body and/or html"),
    ("include=body,,html", "'include' takes body and/or html"),
])
def test_bad_list_parameters_get_a_clear_400(blog, query, message):
    _, client, _ = blog
    answer = client.get(f"/api/v1/posts?{query}")
    assert answer.status_code == 400 and message in answer.get_json()["message"]


def test_the_total_and_the_answer_are_computed_once_per_write(blog):
    app, client, headers = blog
    client.get("/api/v1/posts")  # fills the cache
    with statements(app) as seen:
        assert client.get("/api/v1/posts").get_json()["total"] == 12
        assert client.get("/api/v1/posts?page=2").status_code == 200
    assert not any("count(" in s.lower() for s in seen), seen  # the total came from the cache
    with statements(app) as seen:
        assert client.get("/api/v1/posts").get_json()["total"] == 12  # the whole answer too
    assert seen == []
    client.post("/api/v1/posts", json={"title": "One more", "body": "b"}, headers=headers)
    with statements(app) as seen:
        assert client.get("/api/v1/posts").get_json()["total"] == 13  # a write makes it count again
    assert sum("count(" in s.lower() for s in seen) == 1


def test_pages_past_the_end_run_no_offset_query(blog):
    app, client, _ = blog
    client.get("/api/v1/posts")  # the total is known
    client.get("/author/alice?page=99998")  # and the author's
    with statements(app) as seen:
        assert client.get("/?page=99999").status_code == 404
        assert client.get("/api/v1/posts?page=99999").get_json()["items"] == []
        assert client.get("/author/alice?page=99999").status_code == 404
    assert not [s for s in seen if re.search(r"\bOFFSET\b", s, re.I)], seen
    assert client.get("/author/alice?page=3").status_code == 200  # 12 posts, 5 a page: the last page is there
    assert client.get("/author/alice?page=4").status_code == 404


def test_the_list_is_limited_per_address(database_url, redis_url):
    app = make_app(database_url, redis_url, API_LIST_RATE_LIMIT="3 per minute")
    client = app.test_client()
    for _ in range(3):
        assert client.get("/api/v1/posts", environ_base={"REMOTE_ADDR": "10.5.5.5"}).status_code == 200
    over = client.get("/api/v1/posts", environ_base={"REMOTE_ADDR": "10.5.5.5"})
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert "Too many post list requests" in over.get_json()["message"]
    assert client.get("/api/v1/posts", environ_base={"REMOTE_ADDR": "10.5.5.6"}).status_code == 200
    with app.app_context():
        db.engine.dispose()


def test_list_items_without_include_are_a_fraction_of_the_full_size(blog):
    _, client, _ = blog
    summary = client.get("/api/v1/posts?per_page=12").get_data()
    full = client.get("/api/v1/posts?per_page=12&include=body,html").get_data()
    assert len(summary) * 2 < len(full)
