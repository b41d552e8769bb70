"""Anonymous pages as the best-run sites serve them: validators, precompressed
bodies and caching that shared caches may use.

A page cached for anonymous readers is stored gzipped once, with a strong
ETag of its HTML (``StoredPage``). Each request then gets:

- ``304 Not Modified`` when its ``If-None-Match`` names the ETag: no body;
- the gzipped bytes as they are when it accepts gzip (``Content-Encoding:
  gzip``, an ETag of its own, as RFC 9110 asks of another representation),
  and the HTML otherwise (decompressed for it: few clients refuse gzip);
- ``Cache-Control: public, max-age=0, s-maxage=SHARED_MAX_AGE,
  stale-while-revalidate=STALE_WHILE_REVALIDATE``: browsers revalidate every
  time (a 304 is cheap), an ingress or CDN may keep the page for
  ``SHARED_MAX_AGE`` seconds and serve it up to ``STALE_WHILE_REVALIDATE``
  more while it refetches. An anonymous reader behind such a cache may so
  see a page up to 40 s old (the blog's own cache is invalidated at once);
- ``Vary: Accept-Encoding, Cookie``: a shared cache keeps the gzipped and the
  plain copy apart, and never answers a request that carries a cookie (a
  session, the writer's freshness cookie) with a copy made for one without.

Only anonymous pages come here (``serving.serve_page``); a personalised page
is ``private, no-store`` (security_headers.py). A reader who wrote moments ago
(the freshness cookie) gets ``private, no-cache``: no shared cache keeps the
page it is sent, so the writer's bypass holds past the blog as well.
"""
from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cached_property, lru_cache

from flask import Request, Response
from werkzeug.http import parse_accept_header

SHARED_MAX_AGE = 10
STALE_WHILE_REVALIDATE = 30
PUBLIC = f"public, max-age=0, s-maxage={SHARED_MAX_AGE}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"
WRITER = "private, no-cache"
VARY = "Accept-Encoding, Cookie"
GZIP_LEVEL = 6  # once per render: the ratio matters more than the time


@dataclass(frozen=True)
class StoredPage:
    """What the page cache keeps of an anonymous page: its ETag and its gzipped HTML."""
    etag: str  # without quotes
    gzipped: bytes

    @classmethod
    def of(cls, html: bytes) -> "StoredPage":
        return cls(hashlib.blake2b(html, digest_size=12).hexdigest(), gzip.compress(html, GZIP_LEVEL, mtime=0))

    def pack(self) -> bytes:
        return self.etag.encode("ascii") + b"\n" + self.gzipped

    @classmethod
    def unpack(cls, raw: bytes) -> "StoredPage":
        etag, _, gzipped = raw.partition(b"\n")
        return cls(etag.decode("ascii"), gzipped)

    @cached_property
    def html(self) -> bytes:
        """The page as HTML, for the few clients that refuse gzip (decompressed once)."""
        return gzip.decompress(self.gzipped)

    def tag(self, gzipped: bool) -> str:
        """The strong ETag (unquoted) of one representation: RFC 9110 gives each its own."""
        return self.etag + "-gz" if gzipped else self.etag


def store(html: bytes) -> bytes:
    """The bytes the page cache keeps for ``html``."""
    return StoredPage.of(html).pack()


# A hit hands back the very bytes object the cache keeps, whose hash Python
# caches: unpacking (and decompressing for a plain client) is paid once per
# page version, not per request. A bytes object cannot be corrupted in place,
# so a copy kept here can only be an old page, never another one.
unpack = lru_cache(maxsize=64)(StoredPage.unpack)


@lru_cache(maxsize=64)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip (q > 0), as Werkzeug reads it.
    Cached: clients send a handful of distinct values."""
    return parse_accept_header(accept_encoding)["gzip"] > 0


def headers(page: StoredPage, gzipped: bool, wrote_recently: bool) -> list[tuple[str, str]]:
    """The caching headers of an anonymous page's answer (both paths send exactly these)."""
    sent = [("ETag", f'"{page.tag(gzipped)}"'), ("Cache-Control", WRITER if wrote_recently else PUBLIC), ("Vary", VARY)]
    if gzipped:
        sent.append(("Content-Encoding", "gzip"))
    return sent


def respond(raw: bytes, request: Request, wrote_recently: bool) -> Response:
    """The response to ``request`` for a stored anonymous page (304, gzipped or plain)."""
    page = unpack(raw)
    gzipped = accepts_gzip(request.headers.get("Accept-Encoding"))
    response = Response(page.gzipped if gzipped else page.html, mimetype="text/html",
                        headers=headers(page, gzipped, wrote_recently))
    response = response.make_conditional(request)
    # make_conditional adds a Date; the server sends its own (gunicorn would send both).
    del response.headers["Date"]
    return response
