"""blog-llm-sim as a real process: both protocols, determinism, failure
modes, call counting, and hundreds of concurrent clients."""
from __future__ import annotations

import asyncio
import json
import subprocess
import time

import aiohttp
import httpx
import pytest

from aiblog.ai.prompt import build_messages
from devstack import VENV_BIN, wait_until
from tests.support.llm import MODEL

TOKENS = 60  # long enough for a post's sections and list


@pytest.fixture
def sim(sim):
    """The shared fast simulator (tests/support/llm.py) with answers of TOKENS tokens."""
    sim.configure(tokens=TOKENS)
    return sim


def ollama_stream(url: str, messages, **extra) -> tuple[str, list[dict]]:
    events = []
    with httpx.stream("POST", url + "/api/chat", timeout=10,
                      json={"model": MODEL, "messages": messages, **extra}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        events = [json.loads(line) for line in response.iter_lines() if line]
    return "".join(e["message"]["content"] for e in events), events


def openai_stream(url: str, messages, **extra) -> tuple[str, list[str]]:
    with httpx.stream("POST", url + "/v1/chat/completions", timeout=10,
                      json={"model": MODEL, "messages": messages, "stream": True, **extra}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(d) for d in data if d != "[DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    return text, data


def test_same_prompt_gives_the_same_markdown_post_in_both_protocols(sim):
    messages = build_messages("Caching with Redis")
    text, events = ollama_stream(sim.url, messages)
    assert len(events) == 61 and events[-1]["done"] is True and events[-1]["eval_count"] == 60
    assert text == ollama_stream(sim.url, messages)[0]
    openai_text, data = openai_stream(sim.url, messages)
    assert openai_text == text
    assert data[-1] == "[DONE]" and json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"
    assert text.startswith("# Caching with Redis\n\n")
    assert "\n## " in text and "\n- " in text   # sections and a list, like a blog post
    assert ollama_stream(sim.url, build_messages("Another title"))[0] != text


def test_non_streaming_answers_match_the_streams(sim):
    messages = build_messages("Gunicorn workers")
    streamed, _ = ollama_stream(sim.url, messages)
    ollama = httpx.post(sim.url + "/api/chat", timeout=10,
                        json={"model": MODEL, "messages": messages, "stream": False}).json()
    assert ollama["done"] is True and ollama["message"]["content"] == streamed
    openai = httpx.post(sim.url + "/v1/chat/completions", timeout=10,
                        json={"model": MODEL, "messages": messages}).json()
    assert openai["object"] == "chat.completion"
    assert openai["choices"][0]["message"]["content"] == streamed
    assert openai["usage"]["completion_tokens"] == 60


def test_generate_endpoint_and_token_limits(sim):
    whole = httpx.post(sim.url + "/api/generate", timeout=10,
                       json={"model": MODEL, "prompt": "Write about queues", "stream": False}).json()
    assert whole["done"] is True and whole["response"].startswith("# Write about queues")
    limited = httpx.post(sim.url + "/api/generate", timeout=10, json={
        "model": MODEL, "prompt": "Write about queues", "stream": False,
        "options": {"num_predict": 5}}).json()
    assert limited["eval_count"] == 5 and limited["done_reason"] == "length"
    assert whole["response"].startswith(limited["response"])
    openai = httpx.post(sim.url + "/v1/chat/completions", timeout=10, json={
        "model": MODEL, "max_tokens": 7, "messages": [{"role": "user", "content": "x"}]}).json()
    assert openai["usage"]["completion_tokens"] == 7 and openai["choices"][0]["finish_reason"] == "length"


def test_model_lists_and_version(sim):
    sim.configure(models=[MODEL, "llama3.2:1b"])
    tags = httpx.get(sim.url + "/api/tags").json()
    assert [m["name"] for m in tags["models"]] == [MODEL, "llama3.2:1b"]
    models = httpx.get(sim.url + "/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [MODEL, "llama3.2:1b"]
    sim.configure(models=["*"])   # any name: lists the default and each name asked for
    httpx.post(sim.url + "/api/chat", json={"model": "mistral:7b", "messages": build_messages("x")})
    assert [m["name"] for m in httpx.get(sim.url + "/api/tags").json()["models"]] == [MODEL, "mistral:7b"]
    assert httpx.get(sim.url + "/api/version").json()["version"]
    assert httpx.get(sim.url + "/").text == "Ollama is running"


def test_stats_count_calls_per_endpoint_and_protocol_and_reset_zeroes_them(sim):
    messages = build_messages("Counting")
    for _ in range(3):
        ollama_stream(sim.url, messages)
    openai_stream(sim.url, messages)
    httpx.get(sim.url + "/api/tags")
    stats = sim.stats()
    assert stats["total"] == 5 and stats["generations"] == 4
    assert stats["by_endpoint"] == {"/api/chat": 3, "/v1/chat/completions": 1, "/api/tags": 1}
    assert stats["by_protocol"] == {"ollama": 4, "openai": 1}
    assert stats["outcomes"] == {"ok": 4} and stats["in_progress"] == 0
    sim.reset()
    stats = sim.stats()
    assert stats["total"] == stats["generations"] == 0 and stats["by_endpoint"] == {}


def test_in_progress_counts_a_running_answer(sim):
    sim.configure(ttft=0.1, answer_seconds=1.0)
    with httpx.stream("POST", sim.url + "/api/chat", timeout=10,
                      json={"model": MODEL, "messages": build_messages("Slow")}) as response:
        lines = response.iter_lines()
        next(lines)
        assert sim.stats()["in_progress"] == 1
        assert json.loads([line for line in lines if line][-1])["done"] is True
    assert sim.stats()["in_progress"] == 0


def test_time_to_first_token_and_answer_seconds_are_honoured(sim):
    sim.configure(ttft=0.4, answer_seconds=1.2, tokens=30)
    started = time.monotonic()
    arrivals = []
    with httpx.stream("POST", sim.url + "/api/chat", timeout=10,
                      json={"model": MODEL, "messages": build_messages("Timing")}) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert arrivals[0] >= 0.4 and arrivals[-1] >= 1.2 - 0.05  # timer granularity
    assert arrivals[-1] < 5   # generous: the machine may be busy
    # tokens trickle in over the answer time, not in one burst at the end
    assert arrivals[0] < arrivals[-1] - 0.5
    assert arrivals[len(arrivals) // 2] < arrivals[-1] - 0.2


def test_error_rate_one_answers_500_in_each_protocol_format(sim):
    sim.configure(error_rate=1)
    ollama = httpx.post(sim.url + "/api/chat", json={"model": MODEL, "messages": build_messages("x")})
    assert ollama.status_code == 500 and ollama.json() == {"error": "simulated LLM failure"}
    openai = httpx.post(sim.url + "/v1/chat/completions",
                        json={"model": MODEL, "messages": build_messages("x"), "stream": True})
    assert openai.status_code == 500 and openai.json()["error"]["type"] == "server_error"
    assert sim.stats()["outcomes"] == {"error": 2}


def test_cut_rate_one_breaks_the_stream_half_way(sim):
    sim.configure(cut_rate=1)
    received = []
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", sim.url + "/api/chat", timeout=10,
                          json={"model": MODEL, "messages": build_messages("Cut")}) as response:
            for line in response.iter_lines():
                received.append(json.loads(line))
    assert 0 < len(received) <= 30 and not any(e["done"] for e in received)
    assert sim.stats()["outcomes"] == {"cut": 1}


def test_hang_rate_one_never_answers_and_frees_the_slot_when_the_client_leaves(sim):
    sim.configure(hang_rate=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(sim.url + "/api/chat", timeout=httpx.Timeout(5, read=0.5),
                   json={"model": MODEL, "messages": build_messages("Hang")})
    wait_until(lambda: sim.stats()["in_progress"] == 0, 5, "the hung handler to end")
    assert sim.stats()["outcomes"] == {"hang": 1}


def test_seed_makes_the_failure_pattern_repeatable(sim):
    def pattern() -> list[int]:
        return [httpx.post(sim.url + "/api/chat", timeout=10, json={
            "model": MODEL, "messages": build_messages("dice"), "stream": False}).status_code
            for _ in range(12)]

    sim.configure(error_rate=0.5, seed=7)
    first = pattern()
    sim.configure(seed=7)
    assert pattern() == first
    assert set(first) == {200, 500}


@pytest.mark.parametrize("path, body, message", [
    ("/api/chat", "not json", "invalid JSON"),
    ("/api/chat", [1, 2], "JSON object"),
    ("/api/chat", {"messages": [{"role": "user", "content": "x"}]}, "model is required"),
    ("/api/chat", {"model": MODEL, "messages": "hello"}, "messages must be a non-empty list"),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "string content"),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
     "stream must be a boolean"),
    ("/api/chat", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                   "options": {"num_predict": "many"}}, "num_predict must be an integer"),
    ("/api/generate", {"model": MODEL, "prompt": 42}, "prompt must be a string"),
    ("/v1/chat/completions", {"model": MODEL, "messages": []}, "messages must be a non-empty list"),
    ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                              "max_tokens": 0}, "max_tokens must be a positive integer"),
])
def test_bad_requests_get_a_clear_400(sim, path, body, message):
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(sim.url + path, content=content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in (error["message"] if isinstance(error, dict) else error)
    assert sim.stats()["generations"] == 0


def test_unknown_model_is_404_like_the_real_servers(sim):
    ollama = httpx.post(sim.url + "/api/chat", json={"model": "nope", "messages": build_messages("x")})
    assert ollama.status_code == 404 and "not found" in ollama.json()["error"]
    openai = httpx.post(sim.url + "/v1/chat/completions",
                        json={"model": "nope", "messages": build_messages("x")})
    assert openai.status_code == 404 and "does not exist" in openai.json()["error"]["message"]


@pytest.mark.parametrize("settings, message", [
    ({"error_rate": 2}, "between 0 and 1"),
    ({"error_rate": 0.6, "hang_rate": 0.6}, "must not exceed 1"),
    ({"tokens": "many"}, "must be an integer"),
    ({"ttft": -1}, "must not be negative"),
    ({"colour": "blue"}, "unknown setting"),
])
def test_runtime_config_rejects_bad_values_with_400(sim, settings, message):
    response = httpx.post(sim.url + "/sim/config", json=settings)
    assert response.status_code == 400 and message in response.json()["error"]
    assert httpx.get(sim.url + "/sim/config").json()["error_rate"] == 0


def test_two_hundred_concurrent_identical_requests_are_all_answered(sim):
    sim.configure(ttft=0.3, answer_seconds=1.0)
    messages = build_messages("Two hundred at once")

    async def one(session: aiohttp.ClientSession) -> str:
        async with session.post(sim.url + "/api/chat", json={"model": MODEL, "messages": messages}) as response:
            assert response.status == 200
            events = [json.loads(line) async for line in response.content if line.strip()]
            assert events[-1]["done"] is True
            return "".join(e["message"]["content"] for e in events)

    async def crowd() -> list[str]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            return await asyncio.gather(*(one(session) for _ in range(200)))

    started = time.monotonic()
    texts = asyncio.run(crowd())
    elapsed = time.monotonic() - started
    assert len(texts) == 200 and len(set(texts)) == 1 and texts[0].startswith("# Two hundred at once")
    stats = sim.stats()
    assert stats["generations"] == 200 and stats["outcomes"] == {"ok": 200}
    assert stats["max_in_progress"] >= 100   # they really ran side by side
    assert elapsed < 15, f"200 one-second answers took {elapsed:.1f} s"


def test_bad_command_line_is_a_clear_error():
    result = subprocess.run([str(VENV_BIN / "blog-llm-sim"), "--error-rate", "3"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "error_rate must be between 0 and 1" in result.stderr
