"""The blog with every answer late by SLOWED_BLOG_DELAY_S: a slower build for
the regression tests. The verdict's p95 and p99 count non-AI requests only, so
the pages themselves are slowed (a slower LLM simulator would not move them).

Served by gunicorn as ``tests.support.slowed_blog:create_app()`` with the
production config; its gevent workers make the sleep yield, as slow I/O would.
"""
from __future__ import annotations

import os
import time

import aiblog

DELAY_ENV = "SLOWED_BLOG_DELAY_S"


def create_app():
    app = aiblog.create_app()
    delay = float(os.environ[DELAY_ENV])
    pages = app.wsgi_app

    def slowed(environ, start_response):
        time.sleep(delay)
        return pages(environ, start_response)

    app.wsgi_app = slowed
    return app
