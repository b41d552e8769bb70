"""Hardening items 1, 10 and 14 once more, as the review tried them: over
HTTP against gunicorn (gevent workers, Redis, the real LLM simulator), not
through the Flask test client. (Item 11 already runs the real `aiblog seed`;
items 2, 3, 4 and 6 have their gunicorn tests in test_blog_rate_limits.py.)"""
from __future__ import annotations

import httpx
import pytest

from devstack import Gunicorn, LLMSimulator
from tests.conftest import blog_env, make_app
from tests.support.blog import PASSWORD, create_user
from tests.test_blog_hardening import REFERENCE_BOMB

UPSTREAM_WORDS = "simulated LLM failure"


@pytest.fixture(scope="module")
def failing_sim():
    with LLMSimulator(answer_seconds=None, ttft=0.01, tokens=10, tokens_per_second=5000, models=None) as sim:
        sim.configure(error_rate=1.0, hang_rate=0, cut_rate=0)
        yield sim


@pytest.fixture
def live(tmp_path, sqlite_url, redis_url, failing_sim):
    create_user(make_app(sqlite_url, redis_url), "writer")
    server = Gunicorn(tmp_path / "blog", blog_env(
        DATABASE_URL=sqlite_url, REDIS_URL=redis_url, METRICS_ENABLED="0", LLM_API="sim",
        LLM_BASE_URL=failing_sim.url, CIRCUIT_FAILURES="100", MARKDOWN_HTML_MAX="50000"), workers=1).start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/api/v1/tokens", auth=("writer", PASSWORD)).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield server, http
    server.stop()


def test_markdown_bombs_are_refused_over_http_and_the_worker_keeps_serving(live):
    _, http = live
    stored = http.post("/api/v1/posts", json={"title": "refs", "body": REFERENCE_BOMB})
    assert stored.status_code == 201  # one definition, 3,000 uses: rendered once each, not expanded
    assert len(http.get(f"/post/{stored.json()['id']}").text) < 50_000
    # Plain words: cheap to render (far inside the render budget), just long.
    too_big = http.post("/api/v1/posts", json={"title": "big", "body": "word " * 12_000})
    assert too_big.status_code == 400 and "MARKDOWN_HTML_MAX" in too_big.json()["message"]
    for bomb in ("[" * 100_000, "*a" * 50_000):
        refused = http.post("/api/v1/posts", json={"title": "bomb", "body": bomb})
        assert refused.status_code == 400, refused.text[:300]
    assert http.get("/healthz").status_code == 200  # the single worker is alive and serving


def test_llm_failures_show_a_plain_message_over_http(live, failing_sim):
    _, http = live
    for mode in ("sync", "stream"):
        answer = http.post("/api/v1/generate", json={"title": f"Failing {mode}", "mode": mode})
        assert answer.status_code in (502, 503, 504)
        for secret in (failing_sim.url, failing_sim.url.split("//", 1)[1], UPSTREAM_WORDS):
            assert secret not in answer.text
        assert "AI writer" in answer.json()["message"]


def test_sanitised_posts_over_http_keep_no_tracking_image_or_free_class(live):
    server, http = live
    body = ('<code class="exploit-hook">x</code>\n\n```python\nprint(1)\n```\n\n'
            '![pixel](https://tracker.example/p.gif)\n\n<img src="https://tracker.example/q.gif">')
    post = http.post("/api/v1/posts", json={"title": "Sanitised", "body": body}).json()
    page = httpx.get(f"{server.url}/post/{post['id']}").text  # anonymous, from the page cache
    assert "tracker.example" not in page and "exploit-hook" not in page
    assert 'class="language-python"' in page


def test_a_password_change_over_http_signs_out_the_other_browser_and_the_token(live):
    server, http = live
    from tests.conftest import csrf_token

    here = httpx.Client(base_url=server.url, timeout=30)
    there = httpx.Client(base_url=server.url, timeout=30)
    for browser in (here, there):
        form = csrf_token(browser.get("/login").text)
        assert browser.post("/login", data={"username": "writer", "password": PASSWORD, "csrf_token": form}).status_code == 302
    form = csrf_token(here.get("/account/password").text)
    changed = here.post("/account/password", data={"current": PASSWORD, "password": "new passphrase 1",
                                                    "confirm": "new passphrase 1", "csrf_token": form})
    assert changed.status_code == 302
    assert here.get("/create").status_code == 200
    assert there.get("/create").status_code == 302  # back to the login page
    assert http.post("/api/v1/posts", json={"title": "t", "body": "b"}).status_code == 401  # the old token
    here.close()
    there.close()


def test_the_post_list_over_http_pages_by_cursor_and_leaves_html_out(live):
    server, http = live
    for number in range(7):
        assert http.post("/api/v1/posts", json={"title": f"Listed {number}", "body": "word " * 50}).status_code == 201
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    first = anonymous.get("/api/v1/posts?per_page=4").json()
    assert "html" not in first["items"][0] and first["items"][0]["excerpt"].startswith("word word")
    second = anonymous.get(f"/api/v1/posts?per_page=4&cursor={first['next_cursor']}").json()
    assert [i["title"] for i in first["items"] + second["items"]] == [f"Listed {n}" for n in range(6, -1, -1)]
    assert second["next_cursor"] is None
    assert anonymous.get("/?page=99999").status_code == 404
    anonymous.close()
