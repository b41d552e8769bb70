"""Issue 12's holes, each closed: stored Markdown amplification and parser
bombs, the page cache's size in bytes, and what the sanitiser lets through."""
from __future__ import annotations

import re
import secrets

import pytest

from aiblog.markup import render_markdown
from aiblog.services import services
from tests.conftest import AuthActions, csrf_token, make_app
from tests.support.blog import PASSWORD, bearer, create_user, token_for

# One reference defined with a long URL, used many times: 11 KB of body that
# rendered to about 1.6 MB of HTML before references stopped expanding.
REFERENCE_BOMB = "[x]: https://example.com/" + "a" * 1000 + "\n\n" + "[x]" * 3000


@pytest.fixture
def writer(sqlite_url):
    def make(**overrides):
        app = make_app(sqlite_url, **overrides)
        headers = bearer(token_for(app, create_user(app, "alice")))
        return app, app.test_client(), headers
    return make


def test_a_reference_link_does_not_expand_at_every_use(writer):
    app, client, headers = writer()
    response = client.post("/api/v1/posts", json={"title": "refs", "body": REFERENCE_BOMB}, headers=headers)
    assert response.status_code == 201, response.get_json()
    html = response.get_json()["html"]
    assert len(html) < 2 * len(REFERENCE_BOMB), f"{len(REFERENCE_BOMB)} characters rendered to {len(html)}"


def test_rendered_html_beyond_the_limit_is_refused_naming_it_by_api_and_form(writer):
    app, client, headers = writer(MARKDOWN_HTML_MAX=2000)
    body = "*a* " * 300  # 1,200 characters, about 4,000 of HTML
    response = client.post("/api/v1/posts", json={"title": "big", "body": body}, headers=headers)
    assert response.status_code == 400
    assert "MARKDOWN_HTML_MAX" in response.get_json()["message"]

    web = app.test_client()
    assert AuthActions(web).login("alice", PASSWORD).status_code == 302
    token = csrf_token(web.get("/create").get_data(as_text=True))
    response = web.post("/create", data={"title": "big", "body": body, "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "MARKDOWN_HTML_MAX" in page, re.findall(r'class="[^"]*(?:error|flash)[^"]*"[^>]*>([^<]*)', page) or page[-1500:]
    # A post within the limit is still published.
    assert client.post("/api/v1/posts", json={"title": "small", "body": "*a* " * 20},
                       headers=headers).status_code == 201


@pytest.mark.parametrize("bomb", ["[" * 100_000, "*a" * 50_000], ids=["brackets", "emphasis"])
def test_parser_bombs_are_cut_off_inside_the_parser(writer, bomb):
    """The unguarded parser spent 0.6-2 s of CPU on each; with a 1 ms budget the
    guard in the parser's rules refuses them, naming the setting. No wall-clock
    limit here: the budget counts the thread's CPU time, which a busy machine
    does not inflate."""
    app, client, headers = writer(MARKDOWN_RENDER_BUDGET=0.001)
    response = client.post("/api/v1/posts", json={"title": "bomb", "body": bomb}, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert "MARKDOWN_RENDER_BUDGET" in response.get_json()["message"]


def test_a_long_ordinary_post_renders_within_the_default_budget():
    body = ("A paragraph with *some* emphasis, `code` and a [link](https://example.com/).\n\n" * 1200)[:100_000]
    html = render_markdown(body)  # MarkupRejected if it took more than the default budget
    assert html.count("<p>") > 1000


def test_the_page_cache_is_bounded_in_bytes(writer):
    app, client, headers = writer(PAGE_CACHE_MAX_BYTES=60_000)
    # Pages are stored compressed twice (gzip and brotli, http_cache.py): random text, which neither shrinks much.
    ids = [client.post("/api/v1/posts", json={"title": f"p{i}", "body": secrets.token_urlsafe(9000)},
                       headers=headers).get_json()["id"] for i in range(12)]
    for post_id in ids:
        assert client.get(f"/post/{post_id}").status_code == 200
    with app.app_context():
        pages = services().pages.pages
    assert 0 < pages.total_bytes <= 60_000
    assert 0 < len(pages) < len(ids)



# --- the sanitiser (item 14) ---

def test_code_keeps_only_language_classes():
    html = render_markdown("```python\nx = 1\n```\n\n<code class=\"btn btn-danger language-x\">y</code>"
                           "<code class=\"language-rust\">z</code>")
    assert 'class="language-python"' in html and 'class="language-rust"' in html
    assert "btn" not in html


@pytest.mark.parametrize("source", [
    "![pixel](https://tracker.example/p.gif?u=1)",
    "![pixel](//tracker.example/p.gif)",
    '<img src="http://tracker.example/p.gif" alt="pixel">',
])
def test_external_images_lose_their_source(source):
    html = render_markdown(source)
    assert "tracker.example" not in html
    assert 'alt="pixel"' in html  # the text stays for the reader


def test_same_origin_images_stay():
    html = render_markdown("![logo](/static/logo.png)")
    assert 'src="/static/logo.png"' in html


def test_the_design_notes_state_the_image_and_class_rules():
    from devstack import REPO
    readme = (REPO / "docs" / "design.md").read_text()
    assert "Images come only from this site" in readme and "only names a language" in readme


# --- `aiblog seed` in production (item 11) ---

def test_seed_refuses_in_production_unless_forced(sqlite_url):
    import secrets

    from tests.conftest import blog_env
    from tests.test_blog_cli import aiblog, users_and_roles

    env = blog_env(DATABASE_URL=sqlite_url, REDIS_URL="", BLOG_ENV="production",
                   SECRET_KEY=secrets.token_hex(32))
    refused = aiblog("seed", env=env)
    assert refused.returncode != 0
    assert "refusing to seed with BLOG_ENV=production" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert users_and_roles(sqlite_url) == {}  # no public demo account
    forced = aiblog("seed", "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert list(users_and_roles(sqlite_url)) == ["demo"]


# --- the page-cache version counters (item 13) ---

def mapped_version_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split(None, 5)[5].strip() for line in maps
                if len(line.split(None, 5)) == 6 and "versions-" in line}


def test_version_counters_live_in_a_private_folder_the_master_makes_and_workers_share(sqlite_url, tmp_path):
    import os
    import secrets
    import stat

    from devstack import Gunicorn, blog_environment, wait_until

    shared_tmp = tmp_path / "tmp"
    shared_tmp.mkdir()
    shared_tmp.chmod(0o1777)  # like /tmp
    env = blog_environment(DATABASE_URL=sqlite_url, REDIS_URL="", SECRET_KEY=secrets.token_hex(32),
                           WEB_CONCURRENCY="2", METRICS_ENABLED="0", TMPDIR=str(shared_tmp))
    blog = Gunicorn(tmp_path / "blog", env).start()
    try:
        workers = blog.worker_pids()
        assert len(workers) == 2
        wait_until(lambda: all(mapped_version_files(pid) for pid in workers), 15,
                   "both workers to map their version counters")
        files = set().union(*(mapped_version_files(pid) for pid in workers))
        assert len(files) == 1, f"the workers use different files: {files}"
        folder = os.path.dirname(files.pop())
        info = os.lstat(folder)
        assert stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
        assert stat.S_IMODE(info.st_mode) == 0o700, f"{folder} has mode {oct(stat.S_IMODE(info.st_mode))}"
        assert os.path.dirname(folder) == str(shared_tmp)
    finally:
        blog.stop()


def test_a_folder_someone_else_prepared_is_not_used(tmp_path, monkeypatch):
    import os
    import stat

    from aiblog import runtime_dir
    from aiblog.page_cache.versions import default_versions_path

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.delenv(runtime_dir.RUNTIME_DIR_ENV, raising=False)
    monkeypatch.setattr(runtime_dir.tempfile, "tempdir", None)  # read TMPDIR again
    squatted = tmp_path / f"aiblog-{os.getuid()}"
    squatted.mkdir()
    squatted.chmod(0o777)  # anyone may read and write here
    folder = runtime_dir.private_dir()
    assert folder != str(squatted)
    assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700
    # Every later use in this process (and its children) takes the same folder.
    assert default_versions_path("sqlite:///x").startswith(folder + os.sep)


def test_the_lru_counts_bytes_through_replacement_expiry_and_oversized_values():
    from aiblog.expiring_lru import ExpiringLRU

    now = [0.0]
    lru: ExpiringLRU[bytes] = ExpiringLRU(100, ttl=10, clock=lambda: now[0], max_bytes=10)
    lru.set("a", b"12345")
    lru.set("a", b"123")  # replaced: counted once
    lru.set("b", b"1234567")
    assert (lru.total_bytes, len(lru)) == (10, 2)
    lru.set("c", b"12")  # the least recently used ("a") makes room
    assert lru.get("a") is None and lru.total_bytes == 9
    lru.set("huge", b"x" * 11)  # larger than the whole budget: not kept, nothing evicted
    assert lru.get("huge") is None and len(lru) == 2
    now[0] = 11
    assert lru.get("b") is None and lru.total_bytes == 2  # expired entries give their bytes back
