"""Bad input never gets a 500: every case answers a clear 4xx (or a form
error) and leaves the data as it was."""
from __future__ import annotations

import time

import pytest
import redis
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from aiblog.api.common import token_serializer
from aiblog.extensions import db
from aiblog.models import BODY_MAX, TITLE_MAX, Post, Role, User
from tests.conftest import AuthActions, csrf_token, make_app
from tests.support.blog import PASSWORD, api_token, bearer, create_user, post_id_from, token_for, unsafe_markup
from devstack import Redis, free_port, wait_until

MIB = 1024 * 1024


def log_in_as(client, user_id: int) -> None:
    """Log a test client in without a password round (argon2id is slow on purpose)."""
    with client.session_transaction() as session:
        session["_user_id"] = str(user_id)
        session["_fresh"] = True


def table_counts(app) -> tuple[int, int]:
    with app.app_context():
        counts = (db.session.scalar(select(func.count()).select_from(User)),
                  db.session.scalar(select(func.count()).select_from(Post)))
        db.session.remove()
    return counts


def json_error(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.is_json, response.content_type
    body = response.get_json()
    assert body["status"] == status and body["error"] and body["message"]
    return body["message"]


# -- titles and bodies ---------------------------------------------------------

FORM_CASES = {
    "empty title": ("", "body", "This field is required."),
    "blank title": ("   ", "body", "This field is required."),
    "long title": ("t" * (TITLE_MAX + 1), "body", f"longer than {TITLE_MAX} characters"),
    "empty body": ("Title", "", "This field is required."),
    "blank body": ("Title", " \n\t ", "This field is required."),
    "long body": ("Title", "b" * (BODY_MAX + 1), f"longer than {BODY_MAX} characters"),
    "NUL in body": ("Title", "a\x00b", "must not contain NUL"),
    "control character in title": ("two\x0blines", "body", "must not contain control characters"),
}


def test_web_form_rejects_bad_titles_and_bodies_with_a_form_error(app, client, auth):
    auth.register()
    post_id = post_id_from(auth.write("Original", "original body"))
    for case, (title, body, message) in FORM_CASES.items():
        for path in ("/create", f"/post/{post_id}/edit"):
            response = client.post(path, data={"title": title, "body": body, "csrf_token": auth.form(path)})
            assert response.status_code == 400, (case, path)
            page = response.get_data(as_text=True)
            assert message in page and 'class="error"' in page, (case, path)
    assert table_counts(app) == (1, 1)
    assert "original body" in client.get(f"/post/{post_id}").get_data(as_text=True)


def test_longest_title_is_accepted_in_any_script(client, auth):
    auth.register()
    for title in ("界" * TITLE_MAX, "🚀" * TITLE_MAX, "é" * TITLE_MAX):
        post_id = post_id_from(auth.write(title, "body"))
        assert client.get(f"/api/v1/posts/{post_id}").get_json()["title"] == title


API_CASES = {
    "empty title": ({"title": "", "body": "b"}, "title must not be empty"),
    "blank title": ({"title": " \t", "body": "b"}, "title must not be empty"),
    "long title": ({"title": "t" * (TITLE_MAX + 1), "body": "b"}, f"at most {TITLE_MAX}"),
    "empty body": ({"title": "t", "body": ""}, "body must not be empty"),
    "long body": ({"title": "t", "body": "b" * (BODY_MAX + 1)}, f"at most {BODY_MAX}"),
    "number title": ({"title": 7, "body": "b"}, "'title' must be a string"),
    "null body": ({"title": "t", "body": None}, "'body' must be a string"),
    "NUL title": ({"title": "a\x00", "body": "b"}, "control characters"),
    "newline in title": ({"title": "two\nlines", "body": "b"}, "control characters"),
    "NUL body": ({"title": "t", "body": "a\x00"}, "NUL"),
}


def test_api_rejects_bad_titles_and_bodies(app, client):
    create_user(app, "alice")
    headers = bearer(api_token(client, "alice"))
    post_id = client.post("/api/v1/posts", json={"title": "Original", "body": "kept"}, headers=headers).get_json()["id"]
    for case, (payload, message) in API_CASES.items():
        assert message in json_error(client.post("/api/v1/posts", json=payload, headers=headers), 400), case
        assert message in json_error(client.patch(f"/api/v1/posts/{post_id}", json=payload, headers=headers), 400), case
    assert table_counts(app) == (1, 1)
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["title"] == "Original"


def test_api_create_needs_both_fields(app, client):
    create_user(app, "alice")
    headers = bearer(api_token(client, "alice"))
    assert "must be strings" in json_error(client.post("/api/v1/posts", json={"title": "only"}, headers=headers), 400)
    post = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers).get_json()
    assert "at least one" in json_error(client.patch(f"/api/v1/posts/{post['id']}", json={}, headers=headers), 400)


def test_body_over_one_mebibyte_is_413_on_the_web_form_and_the_api(app, client, auth):
    auth.register()
    token = auth.form("/create")
    response = client.post("/create", data={"title": "Huge", "body": "x" * (MIB + 1), "csrf_token": token})
    assert response.status_code == 413
    assert response.mimetype == "text/html" and "too large" in response.get_data(as_text=True)

    headers = bearer(api_token(client, "alice"))
    huge = b'{"title": "Huge", "body": "' + b"x" * MIB + b'"}'
    assert "too large" in json_error(client.post("/api/v1/posts", data=huge, headers=headers,
                                                 content_type="application/json"), 413)
    assert table_counts(app) == (1, 0)


def test_the_413_answer_and_the_api_document_give_the_configured_limit(sqlite_url):
    app = make_app(sqlite_url, MAX_CONTENT_LENGTH=2048)
    client = app.test_client()
    response = client.post("/register", data={"username": "x" * 3000})
    assert response.status_code == 413 and "at most 2 KiB" in response.get_data(as_text=True)
    responses = client.get("/api/v1/openapi.json").get_json()["paths"]["/posts"]["post"]["responses"]
    assert "larger than 2 KiB" in responses["413"]["description"]


# One rule for a title, whether it names a post or asks the AI writer for one.
TITLES = {
    "padded and decomposed": ("  Cafe\u0301 notes  ", "Caf\u00e9 notes"),
    "tab inside": ("a\tb", "a b"),  # each run of whitespace becomes one space
    "runs of spaces": ("  many   spaces ", "many spaces"),
    "newline": ("two\nlines", "must not contain control characters"),
    "trailing newline": ("ends with a newline\n", "must not contain control characters"),
    "blank": (" \t ", "must not be empty"),
    "too long": ("x" * (TITLE_MAX + 1), f"must be at most {TITLE_MAX} characters"),
    "too long once padded": (" " + "x" * TITLE_MAX, f"must be at most {TITLE_MAX} characters"),
}


@pytest.mark.parametrize("title, expected", TITLES.values(), ids=TITLES.keys())
def test_posts_and_ai_requests_follow_one_title_rule(title, expected):
    from aiblog.ai.generation import InvalidRequest, validate_title
    from aiblog.posts.store import PostValidationError, validate

    def outcome(check, error):
        try:
            return check()
        except error as exc:
            return str(exc)

    as_post = outcome(lambda: validate(title, "body")[0], PostValidationError)
    as_ai_request = outcome(lambda: validate_title(title), InvalidRequest)
    assert as_post == as_ai_request  # the same title, or the same error
    assert (expected in as_post) if "must" in expected else (as_post == expected)


# -- JSON that is not JSON -------------------------------------------------------

MALFORMED = {
    "invalid UTF-8": (b'{"title": "\xc3\x28", "body": "b"}', "not valid UTF-8"),
    "latin-1 bytes": (b"\xff\xfe{}", "not valid UTF-8"),
    "truncated": (b'{"title": "t", "body": ', "malformed JSON"),
    "single quotes": (b"{'title': 't'}", "malformed JSON"),
    "empty": (b"", "must be a JSON object"),
    "array": (b'[{"title": "t", "body": "b"}]', "must be a JSON object"),
    "null": (b"null", "must be a JSON object"),
    "deeply nested": (b"[" * 100_000, "malformed JSON"),
    "lone surrogate": (b'{"title": "t", "body": "\\ud800"}', "lone surrogate"),
    "unknown field": (b'{"title": "t", "body": "b", "admin": true}', "unknown field(s): admin"),
}


def test_api_rejects_malformed_json_with_a_json_error(app, client):
    create_user(app, "alice")
    headers = bearer(api_token(client, "alice"))
    post_id = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers).get_json()["id"]
    for case, (raw, message) in MALFORMED.items():
        for method, path in (("POST", "/api/v1/posts"), ("PATCH", f"/api/v1/posts/{post_id}")):
            response = client.open(path, method=method, data=raw, headers=headers, content_type="application/json")
            assert message in json_error(response, 400), (case, method)
    assert table_counts(app) == (1, 1)


def test_generate_api_rejects_malformed_json(sqlite_url):
    app = make_app(sqlite_url, LLM_BASE_URL=f"http://127.0.0.1:{free_port()}")
    client = app.test_client()
    create_user(app, "alice")
    headers = bearer(api_token(client, "alice"))
    for case in ("invalid UTF-8", "truncated", "array", "lone surrogate"):
        raw, message = MALFORMED[case]
        response = client.post("/api/v1/generate", data=raw, headers=headers, content_type="application/json")
        assert message in json_error(response, 400), case


def test_out_of_range_ids_and_nul_bytes_are_not_server_errors(app, client, auth):
    """Postgres INTEGER ids are 32-bit and its text cannot hold NUL: neither may reach a query."""
    alice = create_user(app, "alice")
    headers = bearer(token_for(app, alice))
    log_in_as(client, alice)
    token = auth.form("/create")
    for huge in (2**31, 2**63, 10**30):
        assert client.get(f"/post/{huge}").status_code == 404
        assert client.get(f"/post/{huge}/edit").status_code == 404
        assert client.post(f"/post/{huge}/delete", data={"csrf_token": token}).status_code == 404
        for method in ("GET", "PATCH", "DELETE"):
            response = client.open(f"/api/v1/posts/{huge}", method=method, json={"title": "t"}, headers=headers)
            json_error(response, 404)
    assert client.get("/author/al%00ice").status_code == 404
    anonymous = AuthActions(app.test_client())
    response = anonymous.login("al\x00ice", PASSWORD)
    assert response.status_code == 401 and "Invalid username or password." in response.get_data(as_text=True)
    json_error(client.post("/api/v1/tokens", auth=("al\x00ice", PASSWORD)), 401)


# -- accounts -------------------------------------------------------------------

def test_duplicate_username_is_a_form_error(app, client, auth):
    assert auth.register("alice").status_code == 302
    auth.logout()
    for taken in ("alice", "ALICE", "Alice"):
        response = auth.register(taken, "another password")
        assert response.status_code == 400
        assert "already taken" in response.get_data(as_text=True)
    assert table_counts(app) == (1, 0)


def test_wrong_password_and_unknown_user_get_the_same_generic_message(app, client, auth):
    create_user(app, "alice")
    wrong = auth.login("alice", "not the password")
    unknown = auth.login("nobody", "not the password")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Invalid username or password." in response.get_data(as_text=True)
    # Nothing else in the page tells the two apart.
    strip = lambda r: r.get_data(as_text=True).replace(csrf_token(r.get_data(as_text=True)), "").replace("nobody", "alice")
    assert strip(wrong) == strip(unknown)
    assert "Log in" in client.get("/").get_data(as_text=True)

    api_wrong = client.post("/api/v1/tokens", auth=("alice", "nope"))
    api_unknown = client.post("/api/v1/tokens", auth=("nobody", "nope"))
    assert json_error(api_wrong, 401) == json_error(api_unknown, 401) == "invalid username or password"


# -- CSRF --------------------------------------------------------------------------

@pytest.fixture
def csrf_world(sqlite_url):
    """An app with an author (with a post) and an admin, for the CSRF cases."""
    app = make_app(sqlite_url, LLM_BASE_URL=f"http://127.0.0.1:{free_port()}")
    alice = create_user(app, "alice")
    boss = create_user(app, "boss", role=Role.ADMIN)
    with app.app_context():
        from aiblog.posts.store import create_post

        post_id = create_post(db.session.get(User, alice), "Alice's post", "body").id
        db.session.remove()
    return app, {"alice": alice, "boss": boss, "post": post_id}


def snapshot(app, client) -> tuple:
    """Everything a forged form could change: users, roles, posts, the login."""
    with app.app_context():
        users = db.session.execute(select(User.username, User.role).order_by(User.id)).all()
        posts = db.session.execute(select(Post.id, Post.title, Post.body).order_by(Post.id)).all()
        db.session.remove()
    with client.session_transaction() as session:
        logged_in = session.get("_user_id")
    return users, posts, logged_in


# form name -> (who is logged in, path, fields); {post} and {alice} are filled in.
FORMS = {
    "register": (None, "/register", {"username": "newbie", "password": PASSWORD, "confirm": PASSWORD}),
    "login": (None, "/login", {"username": "alice", "password": PASSWORD}),
    "logout": ("alice", "/logout", {}),
    "create": ("alice", "/create", {"title": "Forged", "body": "forged"}),
    "edit": ("alice", "/post/{post}/edit", {"title": "Forged", "body": "forged"}),
    "delete": ("alice", "/post/{post}/delete", {}),
    "admin role": ("boss", "/admin/users/{alice}/role", {"role": "reader"}),
    "generate-blog": ("alice", "/generate-blog", {"title": "Forged"}),
    "generate-blog save": ("alice", "/generate-blog/save", {"title": "Forged", "body": "forged"}),
}


@pytest.mark.parametrize("form", FORMS.keys())
def test_every_form_refuses_a_missing_or_bad_csrf_token(csrf_world, form):
    app, ids = csrf_world
    user, path, fields = FORMS[form]
    path = path.format(**ids)
    client = app.test_client()
    if user:
        log_in_as(client, ids[user])
    client.get("/login" if user is None else "/create")  # the session now holds a CSRF secret
    other = app.test_client()
    foreign_token = csrf_token(other.get("/login").get_data(as_text=True))  # valid, but another session's
    before = snapshot(app, client)
    for token in (None, "", "not-a-token", foreign_token, foreign_token[:-2] + "xx"):
        data = dict(fields) if token is None else {**fields, "csrf_token": token}
        response = client.post(path, data=data)
        assert response.status_code == 400, (token, response.status_code)
        assert "CSRF" in response.get_data(as_text=True)
        assert snapshot(app, client) == before
    # The same request with this session's token is accepted: the 400 was the token.
    own = csrf_token(client.get("/login" if user is None else "/create").get_data(as_text=True))
    assert client.post(path, data={**fields, "csrf_token": own}).status_code != 400


# -- API tokens ------------------------------------------------------------------------

class _PastSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 3600


def test_bad_or_expired_api_tokens_answer_401(app, client):
    alice = create_user(app, "alice")
    good = api_token(client, "alice")
    with app.app_context():
        serializer = token_serializer()
        payload = serializer.loads(good)
        expired = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=serializer.salt,
                                         signer=_PastSigner).dumps(payload)
        foreign = URLSafeTimedSerializer("another-secret-key-0123456789", salt=serializer.salt).dumps(payload)
        forged_uid = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="another-salt").dumps({**payload, "uid": alice})
    assert app.config["API_TOKEN_TTL"] < 2 * 3600
    bad_headers = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic YWxpY2U6eA=="},
        "garbage": bearer("garbage"),
        "tampered": bearer(good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")),
        "other secret": bearer(foreign),
        "other salt": bearer(forged_uid),
        "expired": bearer(expired),
        "unicode": {"Authorization": "Bearer токен"},
    }
    for name, headers in bad_headers.items():
        response = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers)
        assert "token" in json_error(response, 401), name
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
    assert client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=bearer(good)).status_code == 201


def test_token_dies_with_its_user_or_an_old_password(app, client):
    alice = create_user(app, "alice")
    create_user(app, "bob")
    alice_token, bob_token = api_token(client, "alice"), api_token(client, "bob")
    with app.app_context():
        db.session.get(User, alice).set_password("a brand new password")
        db.session.delete(db.session.scalar(select(User).where(User.username == "bob")))
        db.session.commit()
    for token in (alice_token, bob_token):
        json_error(client.delete("/api/v1/posts/1", headers=bearer(token)), 401)


# -- XSS -------------------------------------------------------------------------------

XSS_PAYLOADS = [
    '<script>alert("{m}")</script>',
    '<img src=x onerror=alert("{m}")>',
    'text <img src="x" onerror="alert(\'{m}\')"> inline',
    '<a href="javascript:alert(\'{m}\')">click {m}</a>',
    '<a href=" JaVaScRiPt:alert(\'{m}\')">spaced {m}</a>',
    '<a href="jav&#x09;ascript:alert(\'{m}\')">entity {m}</a>',
    '[markdown link {m}](javascript:alert("{m}"))',
    '![markdown image {m}](javascript:alert("{m}"))',
    '<svg onload=alert("{m}")><circle r=1 /></svg>',
    'text <svg onload="alert(\'{m}\')"></svg> inline',
    '<iframe src="javascript:alert(\'{m}\')"></iframe>',
    '"><script>alert("{m}")</script><"',
    '<div style="background:url(javascript:alert(\'{m}\'))" onmouseover="alert(\'{m}\')">{m}</div>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert("{m}")>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">data {m}</a>',
    '<form action="javascript:alert(\'{m}\')"><button formaction="javascript:alert(\'{m}\')">{m}</button></form>',
    '<body onload=alert("{m}")><base href="javascript:alert(\'{m}\')//">',
    '<scr<script>ipt>alert("{m}")</script>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'{m}\')">',
    '<details open ontoggle=alert("{m}")>',
]


def test_xss_payloads_are_stored_but_rendered_harmless(app, client, auth):
    auth.register()
    headers = bearer(api_token(client, "alice"))
    anonymous = app.test_client()
    for index, template in enumerate(XSS_PAYLOADS):
        marker = f"XSSMARK{index}"
        payload = template.format(m=marker)
        via_web = post_id_from(auth.write(payload[:TITLE_MAX], payload))
        via_api = client.post("/api/v1/posts", json={"title": payload[:TITLE_MAX], "body": payload}, headers=headers)
        assert via_api.status_code == 201
        for post_id in (via_web, via_api.get_json()["id"]):
            stored = client.get(f"/api/v1/posts/{post_id}").get_json()
            assert stored["body"] == payload and stored["title"] == payload[:TITLE_MAX]  # verbatim
            assert unsafe_markup(stored["html"], marker) == [], payload
            for reader in (client, anonymous):
                for path in (f"/post/{post_id}", "/", "/author/alice"):
                    page = reader.get(path)
                    assert page.status_code == 200
                    assert unsafe_markup(page.get_data(as_text=True), marker) == [], (payload, path)
        listed = client.get("/api/v1/posts?include=body,html").get_json()["items"]
        assert all(unsafe_markup(item["html"], marker) == [] for item in listed)


# -- SQL injection --------------------------------------------------------------------

SQL_STRINGS = [
    "Robert'); DROP TABLE posts; --",
    "' OR '1'='1' --",
    '"; DELETE FROM users WHERE ""="',
    "1; UPDATE users SET role='admin' --",
    "%' UNION SELECT username, password_hash FROM users --",
    "\\'; SELECT pg_sleep(5); --",
]


def test_sql_injection_strings_are_stored_verbatim_and_harmless(app, client, auth):
    auth.register()
    headers = bearer(api_token(client, "alice"))
    for text in SQL_STRINGS:
        post_id = post_id_from(auth.write(text, text))
        assert client.get(f"/api/v1/posts/{post_id}").get_json()["body"] == text
        post = client.post("/api/v1/posts", json={"title": text, "body": text}, headers=headers).get_json()
        assert (post["title"], post["body"]) == (text, text)
        page = client.get(f"/post/{post['id']}").get_data(as_text=True)
        assert text.replace("'", "&#39;").replace('"', "&#34;") in page
    assert table_counts(app) == (1, 2 * len(SQL_STRINGS))
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.username == "alice")) == "author"
        db.session.remove()

    # Injection through the login, the token endpoint, the author page and the page number.
    auth.logout()
    for text in SQL_STRINGS:
        response = auth.login(text, text)
        assert response.status_code in (400, 401)
        assert json_error(client.post("/api/v1/tokens", auth=(text, text)), 401)
        assert client.get(f"/author/{text}").status_code == 404
        assert "must be an integer" in json_error(client.get("/api/v1/posts", query_string={"page": text}), 400)
    assert "Log in" in client.get("/").get_data(as_text=True)


# -- Redis going away ----------------------------------------------------------------------

def cache_hits() -> float:
    return REGISTRY.get_sample_value("blog_cache_requests_total", {"cache": "page", "result": "hit"}) or 0.0


def test_redis_outage_serves_from_the_database_and_never_a_stale_page(sqlite_url):
    """Redis stops mid-test: pages are still served and writes still work;
    when it returns (with its pre-outage data, as a persistent Redis would),
    the cache is used again and nothing written during the outage is hidden
    by an old cached page — also in a second app (another worker) that made
    no request during the outage."""
    server = Redis().start()
    try:
        writer = make_app(sqlite_url, server.url)
        other_worker = make_app(sqlite_url, server.url)
        client, anonymous, other = writer.test_client(), writer.test_client(), other_worker.test_client()
        auth = AuthActions(client)
        auth.register()
        post_id = post_id_from(auth.write("Before the outage", "version one"))
        for reader in (anonymous, other):
            for _ in range(2):  # the second read is served from the cache
                assert "Before the outage" in reader.get("/").get_data(as_text=True)
                assert "version one" in reader.get(f"/post/{post_id}").get_data(as_text=True)
        assert redis.Redis.from_url(server.url).keys("aiblog:page:*")

        redis.Redis.from_url(server.url).save()  # the restarted server will load these pages
        server.stop()
        ready = anonymous.get("/readyz")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["redis"]["ok"] is False and ready.get_json()["checks"]["database"]["ok"] is True
        assert anonymous.get("/healthz").status_code == 200
        assert "Before the outage" in anonymous.get("/").get_data(as_text=True)

        token = auth.form(f"/post/{post_id}/edit")
        assert client.post(f"/post/{post_id}/edit", data={
            "title": "Edited during the outage", "body": "version two", "csrf_token": token}).status_code == 302
        new_id = post_id_from(auth.write("Written during the outage", "new"))
        for reader in (client, anonymous):
            home = reader.get("/").get_data(as_text=True)
            assert "Written during the outage" in home and "Before the outage" not in home
            assert "version two" in reader.get(f"/post/{post_id}").get_data(as_text=True)
            assert reader.get(f"/post/{new_id}").status_code == 200

        server.start()
        assert redis.Redis.from_url(server.url).keys("aiblog:page:*"), "the old pages are back in Redis"

        stale = []

        def fresh_and_cached() -> bool:
            hits = cache_hits()
            for name, reader in (("other worker", other), ("writer's worker", anonymous)):
                home = reader.get("/").get_data(as_text=True)
                if "Written during the outage" not in home or "Before the outage" in home:
                    stale.append(f"{name}: home page")
                page = reader.get(f"/post/{post_id}").get_data(as_text=True)
                if "version two" not in page or "version one" in page:
                    stale.append(f"{name}: post page")
            return stale or cache_hits() > hits

        wait_until(fresh_and_cached, 10, "the page cache to be used again after Redis returned")
        assert stale == []
        assert anonymous.get("/readyz").status_code == 200
    finally:
        server.close()
