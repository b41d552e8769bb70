"""Host headers (issue 22): a redirect never names the host a client sent, and with
TRUSTED_HOSTS set a made-up Host gets a clean 400 (the site's page or the API's
JSON, never a 500 or a redirect) while the blog's own callers get through: the
ingress host, the Service's names (the `helm test` pod, LoadTests, the chart's
probes) and subdomains of a trusted suffix."""
from __future__ import annotations

import pytest

from aiblog import config
from tests.conftest import make_app

TRUSTED = "blog.example.com,aiblog,aiblog.blog,aiblog.blog.svc.cluster.local,.example.org"
FOREIGN = "evil.example"
SLASH_MERGES = {"/post//6": "/post/6", "/static//blog.css": "/static/blog.css", "/author//demo": "/author/demo",
                "/api//v1/posts": "/api/v1/posts"}


@pytest.fixture
def guarded(sqlite_url):
    return make_app(sqlite_url, TRUSTED_HOSTS=TRUSTED).test_client()


@pytest.fixture
def open_blog(sqlite_url):
    return make_app(sqlite_url).test_client()


@pytest.mark.parametrize("path", [*SLASH_MERGES, "/", "/login", "/post/1", "/healthz"])
def test_a_foreign_host_gets_the_sites_400_page_and_no_redirect(guarded, path):
    answer = guarded.get(path, headers={"Host": FOREIGN})
    if path.startswith("/api"):
        return  # the API's JSON answer: the next test
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert "Location" not in answer.headers
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.mimetype == "text/html"
    page = answer.get_data(as_text=True)
    assert "400 Bad Request" in page and "not served under that host name" in page
    assert FOREIGN not in page


@pytest.mark.parametrize("path, headers", [("/api//v1/posts", {}), ("/api/v1/posts", {}),
                                           ("/", {"Accept": "application/json"})])
def test_a_foreign_host_gets_the_apis_400_json(guarded, path, headers):
    answer = guarded.get(path, headers={"Host": FOREIGN, **headers})
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert answer.get_json() == {"error": "Bad Request", "status": 400,
                                 "message": "This site is not served under that host name."}


def test_a_foreign_host_cannot_post_either(guarded):
    answer = guarded.post("/login", data={"username": "a", "password": "b"}, headers={"Host": f"{FOREIGN}:443"})
    assert answer.status_code == 400 and "not served under that host name" in answer.get_data(as_text=True)


@pytest.mark.parametrize("host", ["blog.example.com", "aiblog:80", "aiblog.blog:80",
                                  "aiblog.blog.svc.cluster.local:8000", "www.example.org", "example.org"])
def test_the_blogs_own_callers_get_through(guarded, host):
    for path in ("/healthz", "/readyz", "/", "/api/v1/posts"):
        assert guarded.get(path, headers={"Host": host}).status_code == 200, (host, path)


@pytest.mark.parametrize("host", ["10.244.1.7:8000", "blog.example.com.evil.example", "notexample.org"])
def test_a_name_like_a_trusted_one_is_still_foreign(guarded, host):
    assert guarded.get("/healthz", headers={"Host": host}).status_code == 400


@pytest.mark.parametrize("client_fixture", ["guarded", "open_blog"])
def test_slash_merging_redirects_stay_on_the_host_the_client_asked(request, client_fixture):
    """Relative Location, with or without TRUSTED_HOSTS: a cache that forwards any Host
    cannot keep a redirect to another site."""
    client = request.getfixturevalue(client_fixture)
    host = "blog.example.com" if client_fixture == "guarded" else FOREIGN
    for path, target in SLASH_MERGES.items():
        answer = client.get(f"{path}?page=2", headers={"Host": host})
        assert answer.status_code == 308, (path, answer.status_code)
        assert answer.headers["Location"] == f"{target}?page=2"
        assert host not in answer.get_data(as_text=True)


def test_without_the_setting_any_host_is_served(open_blog):
    assert open_blog.get("/", headers={"Host": FOREIGN}).status_code == 200


@pytest.mark.parametrize("value, entry", [("blog.example.com:443", "blog.example.com:443"),
                                          ("https://blog.example.com", "https://blog.example.com"),
                                          ("fd00::1", "fd00::1"), ("[::1]", "[::1]"), ("a b", "a b"),
                                          ("ok.example,*.example.com", "*.example.com")])
def test_an_entry_werkzeug_could_never_match_is_refused_by_name(value, entry):
    with pytest.raises(config.ConfigError, match=rf"TRUSTED_HOSTS: '{__import__('re').escape(entry)}' is not a host"):
        config.load({"TRUSTED_HOSTS": value})


def test_the_setting_reads_names_suffixes_and_ipv4():
    from aiblog.trusted_hosts import parse

    assert parse(" Blog.Example.com, .example.org ,10.0.0.1,") == ["blog.example.com", ".example.org", "10.0.0.1"]
    assert parse("") is None and parse(" , ") is None
