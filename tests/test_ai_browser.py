"""The AI writer page in headless Chromium: text grows while the model writes."""
from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest

from tests.conftest import blog_env, make_app
from tests.support.ai import create_user
from tests.support.csp import CspWatch
from devstack import Gunicorn, LLMSimulator

pytestmark = pytest.mark.browser


@pytest.fixture
def live_blog(sqlite_url, redis_url, tmp_path):
    # About 3 s per answer.
    with LLMSimulator(tmp_path, answer_seconds=None, ttft=0.2, tokens=80, tokens_per_second=25, models=None) as sim:
        user = create_user(make_app(sqlite_url, redis_url), "browser-writer", "browser-password-1")
        with Gunicorn(tmp_path, blog_env(DATABASE_URL=sqlite_url, REDIS_URL=redis_url, LLM_API="sim",
                                         LLM_BASE_URL=sim.url), workers=2) as server:
            yield server, user, sim


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"])
        page = browser.new_page()
        yield page
        browser.close()


def test_streaming_page_shows_text_growing_before_the_end(live_blog, page, tmp_path):
    server, (username, password), sim = live_blog
    outside: list[str] = []
    page.on("request", lambda request: urlparse(request.url).hostname not in ("127.0.0.1", "localhost")
            and outside.append(request.url))

    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")

    csp = CspWatch(page)
    page.goto(server.url + "/generate-blog")
    assert page.locator(".badge.sim").is_visible()  # the simulator's output is labelled
    page.fill("#title", "Streaming makes waiting feel short")
    started = time.monotonic()
    page.click("#generate-button")

    # Sample the output while the generation runs.
    lengths = []
    while time.monotonic() - started < 15:
        lengths.append(len(page.locator("#ai-output").inner_text()))
        if page.locator("#ai-status").inner_text() == "Done.":
            break
        page.wait_for_timeout(100)
    assert page.locator("#ai-status").inner_text() == "Done."
    partial = [n for n in lengths[:-1] if n > 0]
    assert len(partial) >= 3, f"text did not grow visibly before the end: {lengths}"
    assert partial == sorted(partial) and partial[0] < partial[-1]
    assert page.locator("#ai-output h1").inner_text() == "Streaming makes waiting feel short"
    page.screenshot(path=str(tmp_path / "streaming.png"))
    assert (tmp_path / "streaming.png").stat().st_size > 5000

    # The finished answer looks like the saved post: the newlines between
    # its HTML blocks are not kept as text (they showed as blank gaps).
    answer = page.locator("#ai-output")
    assert answer.evaluate("e => getComputedStyle(e).whiteSpace") == "normal"
    answer_text, answer_height = answer.inner_text(), answer.bounding_box()["height"]
    assert "\n\n\n" not in answer_text
    csp.assert_none()  # the AI page, its script and the streamed answer

    page.click("#save-form button")
    page.wait_for_url(server.url + "/post/*")
    assert "AI-assisted" in page.content()
    saved = page.locator(".post-body")
    csp.assert_none()  # on the saved post's page
    assert answer_text == saved.inner_text()
    assert abs(answer_height - saved.bounding_box()["height"]) < 0.15 * answer_height
    assert outside == []
    assert sim.stats()["generations"] == 1
