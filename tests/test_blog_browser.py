"""The real site in headless Chromium (Debian's, through Playwright) against
a live gunicorn: sign up, log out, log in, write a post with a Chinese title,
read it on the home page and its own page. No request leaves 127.0.0.1."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect, sync_playwright

from devstack import Gunicorn
from tests.conftest import blog_env
from tests.support.csp import CspWatch

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def live_blog(sqlite_url, tmp_path):
    with Gunicorn(tmp_path, blog_env(DATABASE_URL=sqlite_url, REDIS_URL=""), workers=1) as server:
        yield server


@pytest.fixture
def browser_page(live_blog):
    """A page whose every request is checked: loopback only, nothing else."""
    outside: list[str] = []
    failed: list[str] = []

    def loopback_only(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN")
        context.route("**/*", loopback_only)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.csp = CspWatch(page)  # the test asserts after each page it checks
        yield page
        page.csp.assert_none()
        context.close()
        browser.close()
    assert outside == [], f"requests left 127.0.0.1: {outside}"
    assert failed == [], f"failed requests: {failed}"


@pytest.mark.browser
def test_sign_up_log_in_write_and_read_a_post(live_blog, browser_page, tmp_path):
    page, base = browser_page, live_blog.url
    title = "性能测试：缓存与并发"

    page.goto(base + "/register")
    page.fill("#username", "browser_user")
    page.fill("#password", "correct horse battery")
    page.fill("#confirm", "correct horse battery")
    page.click("button:has-text('Sign up')")
    expect(page.locator(".nav-user")).to_have_text("browser_user")
    expect(page.locator(".flash")).to_contain_text("Welcome, browser_user")

    page.click("button:has-text('Log out')")
    expect(page.locator(".nav-user")).to_have_count(0)
    page.click("a:has-text('Log in')")
    page.fill("#username", "browser_user")
    page.fill("#password", "correct horse battery")
    page.click("form button:has-text('Log in')")
    expect(page.locator(".nav-user")).to_have_text("browser_user")

    page.click("a:has-text('Write')")
    page.fill("#title", title)
    page.fill("#body", "第一段：**加粗**的文字。\n\n- one\n- two")
    page.click("button:has-text('Publish')")
    expect(page.locator("h1.post-title")).to_have_text(title)
    expect(page.locator(".post-body strong")).to_have_text("加粗")
    page.csp.assert_none()
    post_url = page.url
    assert urlsplit(post_url).path.startswith("/post/")

    page.goto(base + "/")
    link = page.locator(".card-title a", has_text=title)
    expect(link).to_be_visible()
    link.click()
    page.wait_for_url(post_url)
    expect(page.locator("h1.post-title")).to_have_text(title)
    expect(page.locator(".post-actions a:has-text('Edit')")).to_be_visible()
    # The stylesheet is served locally and applied (no CDN).
    assert page.evaluate("getComputedStyle(document.querySelector('nav.nav')).display") == "flex"

    shot = tmp_path / "post.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000
    page.csp.assert_none()

    # Delete asks first (static/blog.js: the policy refuses inline handlers).
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click(".post-actions button:has-text('Delete')")
    expect(page.locator("h1.post-title")).to_have_text(title)  # dismissed: still there
    assert dialogs == ["Delete this post?"]
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(".post-actions button:has-text('Delete')")
    page.wait_for_url(lambda url: url != post_url)
    page.goto(base + "/")
    expect(page.locator(".card-title a", has_text=title)).to_have_count(0)
