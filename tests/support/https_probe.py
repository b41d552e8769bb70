"""The blog, plus one path that makes an HTTPS call from the gunicorn worker
(``/probe-https``): what an OpenAI-compatible LLM over https does. Run by
tests/test_blog_gevent_start.py under the production gunicorn config."""
from __future__ import annotations

import os

import httpx

from aiblog import create_app

blog = create_app()


def app(environ, start_response):
    if environ.get("PATH_INFO") != "/probe-https":
        return blog(environ, start_response)
    answer = httpx.get(os.environ["PROBE_URL"], verify=os.environ["PROBE_CA"], timeout=10)
    body = f"{answer.status_code} {answer.text}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
