"""gunicorn's gevent workers patch ``ssl`` after the master has read the
settings. If reading them imported ``ssl`` (redis' asyncio module did, through
the rate limiter), every worker warned ``MonkeyPatchWarning: Monkey-patching
ssl after ssl has already been imported``, and gevent documents that HTTPS
calls may then end in RecursionError."""
from __future__ import annotations

import subprocess
import sys

import httpx

from devstack import Gunicorn, blog_environment
from tests.support.tls import TLSFront, make_certificates


def test_reading_the_settings_leaves_no_module_holding_sslcontext_or_redis():
    # The gunicorn master imports aiblog.config before it forks the workers.
    # gevent warns when a module holds ssl.SSLContext itself (``from ssl import
    # SSLContext``, as redis' asyncio module does): patching cannot reach it.
    code = ("import sys, ssl, aiblog.config as c; c.load({'SECRET_KEY': 'x' * 32}); "
            "print(sorted(n for n, m in list(sys.modules.items()) if n != 'ssl' and m is not None "
            "and any(v is ssl.SSLContext for v in vars(m).values())) + "
            "[n for n in ('redis', 'aiblog.rate_limits') if n in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_gunicorn_starts_without_the_warning_and_a_worker_calls_https(tmp_path):
    certificates = make_certificates(tmp_path / "tls")
    env = blog_environment(SECRET_KEY="k" * 64, DATABASE_URL=f"sqlite:///{tmp_path / 'blog.sqlite3'}",
                           WEB_CONCURRENCY=2, GUNICORN_WORKER_CLASS="gevent", PROBE_CA=certificates.ca)
    blog = Gunicorn(tmp_path / "gunicorn", env, app="tests.support.https_probe:app")
    front = TLSFront(certificates, blog.port)   # TLS in front of the blog's own /healthz
    blog.env["PROBE_URL"] = front.url + "/healthz"
    try:
        with blog:
            answer = httpx.get(blog.url + "/probe-https", timeout=15)
            log = blog.log_tail(100_000)
    finally:
        front.close()
    assert answer.status_code == 200 and answer.text.startswith("200 "), answer.text
    assert "Booting worker" in log, log[-2000:]
    assert "MonkeyPatchWarning" not in log and "RecursionError" not in log, log[-3000:]
