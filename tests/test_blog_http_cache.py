"""Anonymous pages as the best-run sites serve them (http_cache.py): a strong
ETag and 304 on If-None-Match, brotli and gzip bodies stored once and chosen by
Accept-Encoding, and Cache-Control a CDN may use; and never any of it for a
personalised page, a flash or a reader who just wrote."""
from __future__ import annotations

import gzip

import brotli
import pytest

from aiblog.page_cache import http_cache
from aiblog.page_cache.serving import FRESH_COOKIE
from tests.conftest import AuthActions

GZIP = {"Accept-Encoding": "gzip, deflate"}
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}  # what browsers send: brotli wins
PAGES = ["/", "/post/1", "/author/alice"]


@pytest.fixture
def site(app, client):
    """A post by alice, then a client of someone else who never logged in (no cookie at all)."""
    auth = AuthActions(client)
    auth.register()
    assert auth.write(title="Cached", body="A *page* to cache").status_code == 302
    return app.test_client()


@pytest.mark.parametrize("path", PAGES)
def test_an_anonymous_page_is_gzipped_tagged_and_cacheable_by_a_cdn(site, path):
    first = site.get(path, headers=GZIP)
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    html = gzip.decompress(first.get_data())
    assert b"<html" in html and (b"Cached" in html or path == "/author/alice")
    assert first.headers["Cache-Control"] == http_cache.PUBLIC
    assert "s-maxage=10" in http_cache.PUBLIC and "stale-while-revalidate=30" in http_cache.PUBLIC
    assert set(first.headers["Vary"].replace(" ", "").split(",")) >= {"Accept-Encoding", "Cookie"}
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('-gz"')  # strong, and its own for the gzipped bytes
    # The same page again: the same bytes and tag (stored once, not compressed per request).
    again = site.get(path, headers=GZIP)
    assert again.get_data() == first.get_data() and again.headers["ETag"] == etag
    # A browser gets the brotli bytes of the same HTML, a client without
    # compression the HTML itself: each under its own tag.
    browser = site.get(path, headers=BROWSER)
    assert browser.headers["Content-Encoding"] == "br" and brotli.decompress(browser.get_data()) == html
    assert browser.headers["ETag"].endswith('-br"') and browser.headers["Cache-Control"] == http_cache.PUBLIC
    assert site.get(path, headers={**BROWSER, "If-None-Match": browser.headers["ETag"]}).status_code == 304
    plain = site.get(path, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and plain.get_data() == html
    assert len({plain.headers["ETag"], etag, browser.headers["ETag"]}) == 3


@pytest.mark.parametrize(("accept_encoding", "chosen"), [
    ("gzip, deflate, br, zstd", "br"),
    ("br", "br"),
    ("gzip", "gzip"),
    ("br;q=0.5, gzip", "gzip"),  # the client's preference counts
    ("br;q=0, gzip;q=0.1", "gzip"),
    ("*", "br"),
    ("gzip;q=0, br;q=0", None),
    ("identity", None),
    ("", None),
    (None, None),
    ("b\u00e4d;;q=x, ,", None),  # junk is no encoding, not an error
])
def test_the_encoding_is_the_one_the_client_prefers(accept_encoding, chosen):
    assert http_cache.preferred_encoding(accept_encoding) == chosen


def test_a_revalidation_with_the_etag_gets_304_without_a_body(site):
    etag = site.get("/", headers=GZIP).headers["ETag"]
    revalidated = site.get("/", headers={**GZIP, "If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.get_data() == b""
    assert revalidated.headers["ETag"] == etag and revalidated.headers["Cache-Control"] == http_cache.PUBLIC
    assert revalidated.headers["Content-Security-Policy"]  # the security headers stay
    # Another representation's tag, or a stale one, gets the page.
    assert site.get("/", headers={"If-None-Match": etag}).status_code == 200  # plain wants its own tag
    assert site.get("/", headers={**GZIP, "If-None-Match": '"stale-gz"'}).status_code == 200


def test_a_write_changes_the_etag(app, client):
    AuthActions(client).register()
    reader = app.test_client()
    before = reader.get("/", headers=GZIP).headers["ETag"]
    assert AuthActions(client).write(title="Newer").status_code == 302
    after = reader.get("/", headers={**GZIP, "If-None-Match": before})
    assert after.status_code == 200 and b"Newer" in gzip.decompress(after.get_data())
    assert after.headers["ETag"] != before


@pytest.mark.parametrize("path", PAGES)
def test_a_logged_in_reader_never_gets_a_stored_or_shared_page(site, path):
    tag = site.get(path, headers=GZIP).headers["ETag"]  # the anonymous page's
    AuthActions(site).login()
    site.delete_cookie(FRESH_COOKIE)
    response = site.get(path, headers={**GZIP, "If-None-Match": tag})
    assert response.status_code == 200  # the anonymous page's tag never turns into a 304 for them
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "ETag" not in response.headers and "Content-Encoding" not in response.headers
    assert b"Log out" in response.get_data()  # a page for them alone


def test_a_reader_who_just_wrote_gets_a_page_no_shared_cache_keeps(app, client):
    auth = AuthActions(client)
    auth.register()
    assert auth.write(title="Mine").status_code == 302
    reader = app.test_client()  # the writer's browser, signed out, still within the freshness window
    reader.set_cookie(FRESH_COOKIE, client.get_cookie(FRESH_COOKIE).value)
    response = reader.get("/", headers=GZIP)
    assert response.headers["Cache-Control"] == http_cache.WRITER
    assert b"Mine" in gzip.decompress(response.get_data())


def test_a_flash_makes_the_page_personal(site):
    AuthActions(site).login()
    assert AuthActions(site).logout().status_code == 302  # flashes "logged out" for the next page
    page = site.get("/", headers=GZIP)
    assert b"logged out" in page.get_data().lower()
    assert page.headers["Cache-Control"] == "private, no-store" and "ETag" not in page.headers
    follow = site.get("/", headers=GZIP)  # the flash is gone: the shared page again
    assert follow.headers["Cache-Control"] in (http_cache.PUBLIC, http_cache.WRITER)


def test_stored_pages_keep_their_tag_through_packing():
    html = b"<html>x</html>\n" + bytes(range(256)) * 4  # newlines inside the compressed bytes too
    stored = http_cache.StoredPage.of(html)
    assert http_cache.StoredPage.unpack(stored.pack()) == stored
    assert gzip.decompress(stored.gzipped) == html and brotli.decompress(stored.brotli) == html
    assert http_cache.StoredPage.of(b"<html>y</html>").etag != stored.etag
