"""Anonymous pages as the best-run sites serve them: validators, precompressed
bodies and caching that shared caches may use.

A page cached for anonymous readers is stored compressed once, as brotli
and as gzip, with a strong ETag of its HTML (``StoredPage``). Each request
then gets:

- ``304 Not Modified`` when its ``If-None-Match`` names the ETag: no body;
- the stored bytes as they are in the encoding its ``Accept-Encoding``
  prefers (brotli, then gzip, at equal q; ``Content-Encoding`` and an ETag of
  its own, as RFC 9110 asks of another representation), and the HTML
  otherwise (decompressed for it: few clients take neither);
- ``Cache-Control: public, max-age=0, s-maxage=SHARED_MAX_AGE,
  stale-while-revalidate=STALE_WHILE_REVALIDATE``: browsers revalidate every
  time (a 304 is cheap), an ingress or CDN may keep the page for
  ``SHARED_MAX_AGE`` seconds and serve it up to ``STALE_WHILE_REVALIDATE``
  more while it refetches. An anonymous reader behind such a cache may so
  see a page up to 40 s old (the blog's own cache is invalidated at once);
- ``Vary: Accept-Encoding, Cookie``: a shared cache keeps the encodings
  apart, and never answers a request that carries a cookie (a
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

import brotli
from flask import Request, Response
from werkzeug.http import parse_accept_header

SHARED_MAX_AGE = 10
STALE_WHILE_REVALIDATE = 30
PUBLIC = f"public, max-age=0, s-maxage={SHARED_MAX_AGE}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"
WRITER = "private, no-cache"
VARY = "Accept-Encoding, Cookie"
# Once per render, so the ratio matters more than the time; brotli's quality
# 5 compresses a page in well under a millisecond and within a few percent of
# its quality 11 (which takes tens of milliseconds on a home page).
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
ENCODINGS = ("br", "gzip")  # the stored encodings, preferred first at equal q
# Part of the page cache's key for a stored page (serving.anonymous_name): a
# change of ``StoredPage.pack`` gets new keys, so no replica of another
# version ever reads an entry it cannot unpack.
STORE_FORMAT = "page-br"


@dataclass(frozen=True)
class StoredPage:
    """What the page cache keeps of an anonymous page: its ETag and its compressed HTML."""
    etag: str  # without quotes
    gzipped: bytes
    brotli: bytes

    @classmethod
    def of(cls, html: bytes) -> "StoredPage":
        return cls(hashlib.blake2b(html, digest_size=12).hexdigest(), gzip.compress(html, GZIP_LEVEL, mtime=0),
                   brotli.compress(html, mode=brotli.MODE_TEXT, quality=BROTLI_QUALITY))

    def pack(self) -> bytes:
        return f"{self.etag}\n{len(self.gzipped)}\n".encode("ascii") + self.gzipped + self.brotli

    @classmethod
    def unpack(cls, raw: bytes) -> "StoredPage":
        etag, _, rest = raw.partition(b"\n")
        length, _, bodies = rest.partition(b"\n")
        split = int(length)
        return cls(etag.decode("ascii"), bodies[:split], bodies[split:])

    @cached_property
    def html(self) -> bytes:
        """The page as HTML, for the few clients that take no compression (decompressed once)."""
        return gzip.decompress(self.gzipped)

    def body(self, encoding: str | None) -> bytes:
        """The bytes of one representation: ``"br"``, ``"gzip"`` or ``None`` (the HTML)."""
        return self.brotli if encoding == "br" else self.gzipped if encoding == "gzip" else self.html

    def tag(self, encoding: str | None) -> str:
        """The strong ETag (unquoted) of one representation: RFC 9110 gives each its own."""
        return self.etag + _TAG_SUFFIX[encoding]


_TAG_SUFFIX = {"br": "-br", "gzip": "-gz", None: ""}


def store(html: bytes) -> bytes:
    """The bytes the page cache keeps for ``html``."""
    return StoredPage.of(html).pack()


# A hit hands back the very bytes object the cache keeps, whose hash Python
# caches: unpacking (and decompressing for a plain client) is paid once per
# page version, not per request. A bytes object cannot be changed in place,
# so a copy kept here can only be an old page, never another one.
unpack = lru_cache(maxsize=64)(StoredPage.unpack)


@lru_cache(maxsize=64)
def preferred_encoding(accept_encoding: str | None) -> str | None:
    """The stored encoding an ``Accept-Encoding`` value prefers (highest q > 0;
    brotli at a tie), as Werkzeug reads it; ``None``: the HTML itself.
    Cached: clients send a handful of distinct values."""
    accepted = parse_accept_header(accept_encoding)
    best = max(ENCODINGS, key=lambda encoding: accepted[encoding])  # max keeps the first at a tie
    return best if accepted[best] > 0 else None


def headers(page: StoredPage, encoding: str | None, wrote_recently: bool) -> list[tuple[str, str]]:
    """The caching headers of an anonymous page's answer (both paths send exactly these)."""
    sent = [("ETag", f'"{page.tag(encoding)}"'), ("Cache-Control", WRITER if wrote_recently else PUBLIC), ("Vary", VARY)]
    if encoding is not None:
        sent.append(("Content-Encoding", encoding))
    return sent


def respond(raw: bytes, request: Request, wrote_recently: bool) -> Response:
    """The response to ``request`` for a stored anonymous page (304, compressed or plain)."""
    page = unpack(raw)
    encoding = preferred_encoding(request.headers.get("Accept-Encoding"))
    response = Response(page.body(encoding), mimetype="text/html", headers=headers(page, encoding, wrote_recently))
    response = response.make_conditional(request)
    # make_conditional adds a Date; the server sends its own (gunicorn would send both).
    del response.headers["Date"]
    return response
