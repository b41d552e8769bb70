"""Helpers for the performance-suite tests: a real blog stack to point
blog-perf at, targets that fail on purpose, running the CLI, and a browser
that refuses to leave the machine."""
from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from devstack import free_port
from loadtests.bench_stack import Stack

REPO = Path(__file__).resolve().parents[2]
BLOG_PERF = Path(sys.executable).parent / "blog-perf"
# Quick answers keep the tests short; the bench uses 2.5 s.
ANSWER_SECONDS = 0.5
TEST_SETTINGS = {"AI_RATE_LIMIT": "100000 per minute", "LOG_LEVEL": "warning"}
# Small, fast runs: enough requests to have every figure, little CPU.
QUICK_CONCURRENCY = ["--levels", "1,5", "--level-duration", "0.6", "--timeout", "10"]
QUICK_CACHE = ["--titles", "3", "--repeats", "2", "--concurrent-clients", "5", "--concurrent-duration", "0.8"]
QUICK_LOCUST = ["--users", "4", "--spawn-rate", "4", "--duration", "6", "--wait-min", "0.1", "--wait-max", "0.4"]


def start_stack(posts: int = 60, **settings) -> Stack:
    return Stack(answer_seconds=ANSWER_SECONDS, posts=posts, postgres=False, hello=False,
                 blog_settings={**TEST_SETTINGS, **settings}).start()


@pytest.fixture(scope="session")
def perf_blog():
    """The real blog (gunicorn, production config, Redis, LLM simulator), shared by the perf tests."""
    stack = start_stack()
    yield stack
    stack.cleanup()


@pytest.fixture
def refusing_url() -> str:
    """A loopback port where nothing listens: every connection is refused."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return f"http://127.0.0.1:{port}"


class _Always500(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"internal error on purpose"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def failing_url():
    """A tiny local server that answers 500 to everything."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_perf(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    """blog-perf as a user runs it; its output is kept for assertion messages."""
    return subprocess.run([str(BLOG_PERF), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def refused_before_the_run(target: str, out: Path, *options: str) -> str:
    """``blog-perf locust`` with options it must refuse as bad usage (exit 2) before
    running anything (no results written); its stderr."""
    done = run_perf("locust", "--target", target, "--out", str(out), *options, timeout=60)
    assert done.returncode == 2, explain(done)
    assert not (Path(out) / "results.json").exists()
    return done.stderr


def load_results(directory: Path) -> dict:
    return json.loads((Path(directory) / "results.json").read_text(encoding="utf-8"))


def explain(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"


def local_only_browser_page(playwright, outside: list[str]):
    """A Chromium page whose every request is checked: file:// and loopback are
    allowed, anything else is recorded in ``outside`` and aborted."""
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def guard(route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("file", "data", "about") or parsed.hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", guard)
    page.on("request", lambda request: None if urlparse(request.url).scheme in ("file", "data", "about")
            or urlparse(request.url).hostname in ("127.0.0.1", "localhost") else outside.append(request.url))
    return browser, page
