"""Issue 12 item 10: what went wrong with the LLM is logged, and users see a
plain message: never LLM_BASE_URL nor the upstream's own words, on the web
page or the API, in sync or stream mode, against the real LLM simulator."""
from __future__ import annotations

import logging

import pytest

from tests.conftest import AuthActions, csrf_token
from tests.support.ai import bearer_for, create_user
from tests.test_ai_generation import ai_app, generate, sim  # noqa: F401  (the simulator fixture)
from devstack import free_port

UPSTREAM_WORDS = "simulated LLM failure"  # what the simulator says with its HTTP 500


@pytest.fixture(params=["unreachable", "upstream-error"])
def failing_llm(request, sim):
    """An LLM URL that fails, and the strings that must not reach a user."""
    sim.reset()
    if request.param == "unreachable":
        url = f"http://127.0.0.1:{free_port()}"
        sim.configure(error_rate=0)
    else:
        url = sim.url
        sim.configure(error_rate=1.0, hang_rate=0, cut_rate=0)
    yield url, [url, url.split("//", 1)[1], UPSTREAM_WORDS]
    sim.configure(error_rate=0)


def assert_private(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} was shown to the user: {text[:300]}"


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_llm_errors_never_show_the_base_url_or_upstream_text(sqlite_url, redis_url, failing_llm):
    url, secrets = failing_llm
    app = ai_app(sqlite_url, redis_url, url, CIRCUIT_FAILURES=100)  # every call reaches the LLM
    client = app.test_client()
    headers = bearer_for(client, *create_user(app))
    log = Recorder()
    logger = logging.getLogger("aiblog.ai.generation_errors")
    # Alembic's fileConfig (the migrations the fixtures ran in this process)
    # disables loggers that existed before it; `aiblog serve` never runs it.
    logger.disabled = False
    logger.addHandler(log)

    bodies = []
    for number, mode in enumerate(("sync", "stream")):
        response = generate(client, headers, f"API {mode} {number}", mode=mode)
        assert response.status_code in (200, 502, 503, 504)
        bodies.append(response.get_data(as_text=True))

    web = app.test_client()
    AuthActions(web).register("pagewriter")
    token = csrf_token(web.get("/generate-blog").get_data(as_text=True))
    sync = web.post("/generate-blog", data={"title": "Web sync", "csrf_token": token})
    assert sync.status_code in (502, 503, 504)
    stream = web.post("/generate-blog", data={"title": "Web stream", "csrf_token": token},
                      headers={"Accept": "text/event-stream"})
    bodies += [sync.get_data(as_text=True), stream.get_data(as_text=True)]

    for body in bodies:
        assert_private(body, secrets)
        assert "AI writer" in body  # the plain message, not an empty one
    # The details are not lost: operators find them in the log.
    logging.getLogger("aiblog.ai.generation_errors").removeHandler(log)
    assert any(url in record.getMessage() for record in log.records)
