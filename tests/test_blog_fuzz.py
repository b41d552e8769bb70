"""Schemathesis fuzzes the API from its own OpenAPI document: no input
finds a 5xx, and requests and answers conform to the document.

The app runs in-process (WSGI) on a seeded SQLite database that a fixture
makes when the tests run, not at import; operations that need a Bearer token
get a valid one. The LLM address is a closed port, so /generate answers 503
at once — a documented answer there — and Redis is not configured, so
background generation is a documented 503 too."""
from __future__ import annotations

import pytest
import schemathesis
from flask_migrate import upgrade
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from aiblog.extensions import db
from aiblog.models import ID_MAX, Role, User
from aiblog.posts.store import create_post
from devstack import free_port
from tests.conftest import make_app
from tests.support.blog import create_user, token_for

MAX_EXAMPLES = 50
SEEDED_POSTS = 60

CONFIG = SchemathesisConfig.from_dict({"checks": {
    # 413 is how the API refuses a body over MAX_CONTENT_LENGTH: a rejection like 400.
    "negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 413, 415, 422, 429]},
}})


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory):
    """The app under test, seeded, and the fuzzer's token."""
    directory = tmp_path_factory.mktemp("fuzz")
    app = make_app(f"sqlite:///{directory}/blog.sqlite3", LLM_BASE_URL=f"http://127.0.0.1:{free_port()}",
                   LOGIN_RATE_LIMIT="100000 per minute", AI_RATE_LIMIT="100000 per minute",
                   API_LIST_RATE_LIMIT="100000 per minute")
    with app.app_context():
        upgrade()
    # The fuzzer's user is an admin, so that PATCH and DELETE reach their real work.
    admin_id = create_user(app, "fuzzer", role=Role.ADMIN)
    with app.app_context():
        admin = db.session.get(User, admin_id)
        for i in range(SEEDED_POSTS):
            create_post(admin, f"Seed post {i}", f"Body {i} with **Markdown**")
        db.session.remove()
    _fuzzer_token.append(token_for(app, admin_id))
    client = app.test_client()
    cursor = client.get("/api/v1/posts?per_page=7").get_json()["next_cursor"]
    while cursor:  # every cursor the list gives out, for the cases below
        _valid_cursors.append(cursor)
        cursor = client.get(f"/api/v1/posts?per_page=7&cursor={cursor}").get_json()["next_cursor"]
    return app, _fuzzer_token[-1]


def _api_document() -> dict:
    """The API's OpenAPI document as the app serves it, from an app with no
    database (the document needs only the settings)."""
    from aiblog.api.openapi import document

    with make_app("sqlite://").app_context():
        return document()


# Schemathesis makes its tests from the document while pytest collects them;
# the app those tests call, and its token, come from the ``fuzzed_app`` fixture.
schema = schemathesis.openapi.from_dict(_api_document(), config=CONFIG)
_fuzzer_token: list[str] = []  # set by ``fuzzed_app``, read by FuzzerToken whenever a case is sent
_valid_cursors: list[str] = []  # next_cursor values of the seeded list, set by ``fuzzed_app``


@schema.auth(refresh_interval=None).skip_for(path="/tokens")
class FuzzerToken:
    """A valid Bearer token; schemathesis still tries each operation without it.
    While pytest collects, before ``fuzzed_app`` has made the user, there is
    none yet: the cases sent during the test ask again (no caching)."""

    def get(self, case, context):
        return _fuzzer_token[-1] if _fuzzer_token else "no-token-before-the-fixture"

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_has_no_server_errors_and_keeps_its_contract(case, fuzzed_app):
    app, _ = fuzzed_app
    case.operation.schema.app = app  # where the case goes (``from_wsgi`` would have set it at import)
    post_id = (case.path_parameters or {}).get("post_id")
    if type(post_id) is int and 0 <= post_id <= ID_MAX:
        # Random valid ids almost never exist: fold them onto the seeded
        # posts so that GET, PATCH and DELETE do their real work too.
        case.path_parameters["post_id"] = post_id % (SEEDED_POSTS + 5)
    excluded = []
    cursor = (case.query or {}).get("cursor")
    if isinstance(cursor, str) and _valid_cursors:
        # A cursor is one the API gave out, which no schema can say: random
        # ones are all refused (400, tested in test_blog_api_lists.py). The
        # cases get a real one, so keyset pages with every per_page and
        # include are fuzzed; with `page` as well, the 400 ("not both") is
        # the documented answer too.
        case.query["cursor"] = _valid_cursors[len(cursor) % len(_valid_cursors)]
        if "page" in case.query:
            excluded.append(positive_data_acceptance)
    if case.operation.path == "/generate":
        # No LLM listens: 503 is the documented answer; any other 5xx is a bug.
        response = case.call_and_validate(app=app, excluded_checks=[not_a_server_error])
        assert response.status_code < 500 or response.status_code == 503, response.text
    else:
        case.call_and_validate(app=app, excluded_checks=excluded)
