"""The fast path (page_cache/fast_path.py): cached anonymous pages answered
before Flask, exactly as Flask answers them, and nothing else.

Each test tells the two paths apart by the middleware's own count of its
answers (``served``): the first request for a page misses and is Flask's
(it renders and stores the page), the next ones are the fast path's."""
from __future__ import annotations

import gzip

import brotli
import pytest

from aiblog.monitoring import metrics
from aiblog.page_cache import http_cache
from aiblog.page_cache.fast_path import CachedPageFastPath
from aiblog.page_cache.serving import FRESH_COOKIE
from tests.conftest import AuthActions, make_app
from devstack import wait_until
from tests.test_blog_cache_tiers import replica, subscribed

GZIP = {"Accept-Encoding": "gzip, deflate"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # brotli first
PLAIN = {"Accept-Encoding": "identity"}


def fast_path(app) -> CachedPageFastPath:
    return app.wsgi_app


@pytest.fixture
def app(sqlite_url):
    return make_app(sqlite_url, BLOG_ENV="production", SESSION_COOKIE_SECURE="false")


@pytest.fixture
def post_id(app) -> int:
    """A post by alice, written through the site (her client keeps its cookies)."""
    writer = app.test_client()
    AuthActions(writer).register()
    response = AuthActions(writer).write(title="Fast", body="A *page* served before Flask")
    assert response.status_code == 302
    return int(response.headers["Location"].rsplit("/", 1)[1])


def anonymous(app):
    """A client that never got a cookie (every request of it sends none)."""
    return app.test_client(use_cookies=False)


def comparable(response) -> tuple:
    headers = sorted((name, value) for name, value in response.headers.items() if name != "Date")
    return response.status_code, headers, response.get_data()


@pytest.mark.parametrize("path", ["/", "/?page=1", "/post/{id}"])
@pytest.mark.parametrize("encoding", [BROWSER, GZIP, PLAIN], ids=["br", "gzip", "plain"])
def test_the_fast_path_answers_exactly_as_flask_does(app, post_id, path, encoding):
    path = path.format(id=post_id)
    reader, counter = anonymous(app), fast_path(app)
    by_flask = reader.get(path, headers=encoding)
    assert by_flask.status_code == 200 and counter.served == 0  # a miss: Flask rendered and stored it
    by_fast_path = reader.get(path, headers=encoding)
    assert counter.served == 1
    assert comparable(by_fast_path) == comparable(by_flask)
    html = by_fast_path.get_data()
    html = brotli.decompress(html) if encoding is BROWSER else gzip.decompress(html) if encoding is GZIP else html
    assert b"Fast" in html and by_fast_path.headers["Strict-Transport-Security"]  # production's headers too
    # The revalidation: 304 with no body, the same headers as Flask's 304.
    tag = by_fast_path.headers["ETag"]
    fast_304 = reader.get(path, headers={**encoding, "If-None-Match": f'"other", {tag}'})
    assert counter.served == 2 and fast_304.status_code == 304 and fast_304.get_data() == b""
    flask_304 = reader.get(path, headers={**encoding, "If-None-Match": tag, "If-Range": tag})  # If-Range: Flask's
    assert counter.served == 2 and comparable(fast_304) == comparable(flask_304)


def test_a_request_with_any_cookie_is_flasks(app, post_id):
    """A session (a logged-in user, a flash) or the writer's cookie: never the fast path."""
    path = f"/post/{post_id}"
    anonymous(app).get(path, headers=GZIP)  # cached for anonymous readers
    counter = fast_path(app)
    user = app.test_client()
    AuthActions(user).login()
    user.delete_cookie(FRESH_COOKIE)
    page = user.get(path, headers=GZIP)
    assert b"Log out" in page.get_data() and page.headers["Cache-Control"] == "private, no-store"
    writer = app.test_client(use_cookies=False)
    fresh = writer.get(path, headers={**GZIP, "Cookie": f"{FRESH_COOKIE}=1"})
    assert fresh.headers["Cache-Control"] == http_cache.WRITER
    unrelated = writer.get(path, headers={**GZIP, "Cookie": "consent=yes"})
    assert unrelated.headers["Cache-Control"] == http_cache.PUBLIC
    assert counter.served == 0
    # A flash waits in the session of a client that logged out: its next page shows it.
    AuthActions(user).logout()
    flashed = user.get("/", headers=GZIP)
    assert b"logged out" in flashed.get_data().lower() and counter.served == 0


def test_the_page_is_never_stale_after_a_write(app, post_id):
    reader = anonymous(app)
    reader.get("/", headers=GZIP)
    reader.get("/", headers=GZIP)
    assert fast_path(app).served == 1
    writer = app.test_client()
    AuthActions(writer).login()
    assert AuthActions(writer).write(title="Newest of all").status_code == 302
    after = reader.get("/", headers=GZIP)
    assert fast_path(app).served == 1  # the version moved: a miss, Flask's
    assert b"Newest of all" in gzip.decompress(after.get_data())


@pytest.mark.parametrize("path", ["/post/0{id}", "/post/{id}?x=1", "/post/{id}/", "/?page=01", "/?page=1&x=2",
                                  "/?page=100001", "/post/99999999999999999999"])
def test_other_spellings_of_a_page_are_flasks(app, post_id, path):
    reader = anonymous(app)
    for canonical in ("/", f"/post/{post_id}"):
        reader.get(canonical)
    path = path.format(id=post_id)
    first, second = reader.get(path), reader.get(path)
    assert fast_path(app).served == 0 and first.status_code == second.status_code


def test_head_and_other_methods_are_flasks(app, post_id):
    reader = anonymous(app)
    reader.get("/")
    assert reader.head("/").status_code == 200 and reader.head("/").get_data() == b""
    assert reader.post("/").status_code in (400, 405)
    assert fast_path(app).served == 0


def test_an_untrusted_host_is_refused_even_for_a_cached_page(sqlite_url):
    app = make_app(sqlite_url, TRUSTED_HOSTS="blog.example")
    reader = anonymous(app)
    trusted = {"Host": "blog.example"}
    assert reader.get("/", headers=trusted).status_code == 200
    assert reader.get("/", headers=trusted).status_code == 200 and fast_path(app).served == 1
    refused = reader.get("/", headers={"Host": "evil.example"})
    assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
    assert fast_path(app).served == 1


def request_count(app, rule: str, status: str) -> float:
    registry = app.extensions["aiblog_metrics"].registry
    value = registry.get_sample_value(metrics.HTTP_DURATION + "_count",
                                      {"method": "GET", "url_rule": rule, "status": status})
    return value or 0.0


def test_its_answers_are_in_the_request_metrics_by_route_template(app, post_id):
    reader = anonymous(app)
    rule = "/post/<int:post_id>"
    registry = app.extensions["aiblog_metrics"].registry
    answered = {"method": "GET", "status": "200"}
    before = registry.get_sample_value(metrics.HTTP_REQUESTS, answered)
    for _ in range(3):
        reader.get(f"/post/{post_id}", headers=GZIP)
    tag = reader.get(f"/post/{post_id}", headers=GZIP).headers["ETag"]
    reader.get(f"/post/{post_id}", headers={**GZIP, "If-None-Match": tag})
    assert fast_path(app).served == 4
    assert request_count(app, rule, "200") == 4 and request_count(app, rule, "304") == 1
    assert registry.get_sample_value(metrics.HTTP_REQUESTS, answered) == before + 4


def test_with_redis_a_page_another_replica_invalidated_is_not_served(sqlite_url, redis_url):
    one, two = replica(sqlite_url, redis_url), replica(sqlite_url, redis_url)
    reader = anonymous(one)
    reader.get("/", headers=GZIP)
    wait_until(lambda: subscribed(one) and subscribed(two), 10, "both replicas subscribed")
    reader.get("/", headers=GZIP)
    reader.get("/", headers=GZIP)
    assert fast_path(one).served >= 1
    served = fast_path(one).served
    writer = two.test_client()
    AuthActions(writer).register(username="bob")
    assert AuthActions(writer).write(title="Written on the other replica").status_code == 302
    wait_until(lambda: b"Written on the other replica" in gzip.decompress(reader.get("/", headers=GZIP).get_data()),
               5, "the other replica's write on this one's home page")
    assert b"Written on the other replica" in gzip.decompress(reader.get("/", headers=GZIP).get_data())
    assert fast_path(one).served > served  # and the new page is served fast again
