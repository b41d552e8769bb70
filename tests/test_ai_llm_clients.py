"""The Ollama and OpenAI clients against a real blog-llm-sim process:
streaming, model discovery, every timeout, and every failure kind. (The
circuit breaker is the generation layer's: tests/test_ai_generation.py.)"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from aiblog.monitoring import metrics
from aiblog.ai.clients import GenerationOptions, OllamaClient, OpenAIClient, Timeouts, make_client
from aiblog.ai.llm_errors import LLMError, LLMStreamCut, LLMTimeout, LLMUnavailable
from aiblog.ai.prompt import build_messages
from devstack.llm_sim.text import answer_pieces
from devstack import REPO, free_port, wait_until
from tests.support.llm import MODEL

OPTIONS = GenerationOptions(max_tokens=400, temperature=0.7)
CLIENTS = {"ollama": OllamaClient, "openai": OpenAIClient}


@pytest.fixture(params=sorted(CLIENTS))
def api(request):
    return request.param


def client_for(api: str, url: str, model: str = MODEL, **timeouts) -> OllamaClient | OpenAIClient:
    return CLIENTS[api](url, model, timeouts=Timeouts(**{"connect": 2, "first_token": 5, "total": 20,
                                                           **timeouts}), keep_alive="5m")


def expected_text(messages: list[dict], tokens: int) -> str:
    return "".join(answer_pieces("\n".join(m["content"] for m in messages), tokens))


def sample(metric, suffix: str) -> float:
    return next(s.value for s in metric.collect()[0].samples if s.name.endswith(suffix))


def test_stream_chat_yields_pieces_as_they_arrive_and_records_metrics(sim, api):
    messages = build_messages("Streaming answers")
    tokens_before = sample(metrics.LLM_TOKENS, "_total")
    ttft_before = sample(metrics.LLM_TTFT_SECONDS, "_count")
    pieces = list(client_for(api, sim.url).stream_chat(messages, OPTIONS))
    assert len(pieces) == 40
    assert "".join(pieces) == expected_text(messages, 40)
    assert sample(metrics.LLM_TOKENS, "_total") - tokens_before == 40
    assert sample(metrics.LLM_TTFT_SECONDS, "_count") - ttft_before == 1
    endpoint = "/api/chat" if api == "ollama" else "/v1/chat/completions"
    assert sim.stats()["by_endpoint"] == {endpoint: 1}


def test_batched_reads_give_the_same_answer_with_fewer_wake_ups(sim, api, monkeypatch):
    """For a whole answer the client lets tokens pile up in the socket when
    it runs dry: the same text, the first token never held back, and far
    fewer pauses (each one wake-up) than tokens."""
    from aiblog.ai.clients import lines

    sim.configure(tokens=60, tokens_per_second=300)  # a token every 3.3 ms: 0.2 s an answer
    messages = build_messages("Batched reads")
    pauses = []
    real_sleep = lines.time.sleep
    monkeypatch.setattr(lines.time, "sleep", lambda seconds: (pauses.append(seconds), real_sleep(seconds)))
    stream = client_for(api, sim.url).stream_chat(messages, OPTIONS, batch_seconds=0.05)
    first = next(stream)
    assert pauses == []  # the first token is never held back
    batched = first + "".join(stream)
    assert batched == expected_text(messages, 60)
    assert 1 <= len(pauses) <= 10 and set(pauses) == {0.05}  # 60 tokens, ~4 pauses of 50 ms
    pauses.clear()
    assert "".join(client_for(api, sim.url).stream_chat(messages, OPTIONS)) == batched
    assert pauses == []  # without batch_seconds every token is read as it comes


def test_generation_options_reach_the_server(sim, api):
    few = GenerationOptions(max_tokens=5, temperature=0.2)
    messages = build_messages("Short")
    pieces = list(client_for(api, sim.url).stream_chat(messages, few))
    assert len(pieces) == 5 and "".join(pieces) == expected_text(messages, 5)


def test_options_key_is_stable_and_distinguishes_options():
    assert GenerationOptions(400, 0.7).key() == GenerationOptions(400, 0.70).key()
    assert GenerationOptions(400, 0.7).key() != GenerationOptions(400, 0.8).key()
    assert GenerationOptions(400, 0.7).key() != GenerationOptions(300, 0.7).key()


def test_slow_first_token_times_out(sim, api):
    sim.configure(ttft=3)
    received = []
    started = time.monotonic()
    with pytest.raises(LLMTimeout, match="no first token within 0.5 s") as caught:
        received.extend(client_for(api, sim.url, first_token=0.5).stream_chat(build_messages("x"), OPTIONS))
    assert time.monotonic() - started >= 0.5
    assert received == []  # the deadline, not the token at 3 s, ended the call
    assert (caught.value.status_code, caught.value.kind) == (504, "timeout")


def test_hung_server_times_out_at_the_first_token_deadline(sim, api):
    sim.configure(hang_rate=1)
    started = time.monotonic()
    with pytest.raises(LLMTimeout, match="first token"):  # the server never answers: only the deadline ends it
        list(client_for(api, sim.url, first_token=0.5).stream_chat(build_messages("x"), OPTIONS))
    assert time.monotonic() - started >= 0.5


def test_answer_that_keeps_trickling_past_the_total_deadline_times_out(sim, api):
    sim.configure(tokens=200, tokens_per_second=20)  # 10 s in all, a token every 50 ms
    received = []
    started = time.monotonic()
    with pytest.raises(LLMTimeout, match="did not finish its answer within 1 s"):
        for piece in client_for(api, sim.url, total=1).stream_chat(build_messages("x"), OPTIONS):
            received.append(piece)
    assert time.monotonic() - started >= 1
    assert 0 < len(received) < 200  # stopped long before the answer's 10 s


def test_total_deadline_interrupts_a_wait_between_tokens(sim, api):
    # Tokens every 1.9 s stay under the 2 s read timeout, so without the
    # watchdog the call would only notice the deadline at the token at 3.8 s.
    sim.configure(tokens=5, tokens_per_second=1 / 1.9)
    received = []
    started = time.monotonic()
    with pytest.raises(LLMTimeout, match="did not finish its answer within 2.5 s"):
        received.extend(client_for(api, sim.url, first_token=2, total=2.5).stream_chat(build_messages("x"), OPTIONS))
    assert time.monotonic() - started >= 2.5
    assert len(received) == 2  # the tokens at 0 and 1.9 s, not the one at 3.8 s: the wait was interrupted


def test_stall_in_the_middle_of_an_answer_times_out(sim, api):
    sim.configure(tokens_per_second=0.5, tokens=5)  # a token every 2 s
    with pytest.raises(LLMTimeout, match="sent nothing for 0.5 s"):
        list(client_for(api, sim.url, first_token=0.5).stream_chat(build_messages("x"), OPTIONS))


def test_connect_timeout(api):
    # A listener whose accept queue is full drops new SYNs: connect hangs.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            with pytest.raises(LLMTimeout, match="could not connect .* within 0.3 s"):
                list(client_for(api, f"http://127.0.0.1:{port}", connect=0.3)
                     .stream_chat(build_messages("x"), OPTIONS))
        finally:
            for filler in fillers:
                filler.close()


def test_connection_refused_is_unavailable_at_once(api, monkeypatch):
    import time as time_module

    client = client_for(api, f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(time_module, "sleep", lambda seconds: pytest.fail(f"the client waited {seconds} s to retry"))
    with pytest.raises(LLMUnavailable, match="unreachable") as caught:
        list(client.stream_chat(build_messages("x"), OPTIONS))
    assert (caught.value.status_code, caught.value.kind) == (503, "unavailable")


def test_server_error_is_a_bad_response(sim, api):
    sim.configure(error_rate=1)
    with pytest.raises(LLMError, match="HTTP 500: simulated LLM failure") as caught:
        list(client_for(api, sim.url).stream_chat(build_messages("x"), OPTIONS))
    assert type(caught.value) is LLMError
    assert (caught.value.status_code, caught.value.kind) == (502, "bad_response")


def test_server_that_hangs_up_without_answering_is_a_bad_response(api):
    """A server that reads the request and closes the connection (a crashed
    or restarting LLM behind a proxy): an error at once, not a stream cut."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    requests = []

    def hang_up():
        connection, _ = listener.accept()
        with connection:
            requests.append(connection.recv(65536))

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        client = client_for(api, f"http://127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(LLMError, match="closed the connection without answering") as caught:
            list(client.stream_chat(build_messages("x"), OPTIONS))
    finally:
        listener.close()
        thread.join(timeout=5)
    assert type(caught.value) is LLMError
    assert (caught.value.status_code, caught.value.kind) == (502, "bad_response")
    assert requests and requests[0].startswith(b"POST ")


def test_stream_cut_mid_way_is_reported_after_the_partial_text(sim, api):
    sim.configure(cut_rate=1)
    received = []
    with pytest.raises(LLMStreamCut) as caught:
        for piece in client_for(api, sim.url).stream_chat(build_messages("x"), OPTIONS):
            received.append(piece)
    assert 0 < len(received) < 40
    assert (caught.value.status_code, caught.value.kind) == (502, "stream_cut")


def test_unknown_model_is_unavailable_with_its_name(sim, api):
    with pytest.raises(LLMUnavailable, match="does not serve model 'llama3.2:1b'"):
        list(client_for(api, sim.url, model="llama3.2:1b").stream_chat(build_messages("x"), OPTIONS))


def test_consumer_that_stops_early_frees_the_server(sim, api):
    sim.configure(tokens=100, tokens_per_second=50)
    stream = client_for(api, sim.url).stream_chat(build_messages("x"), OPTIONS)
    assert [next(stream) for _ in range(3)]
    stream.close()
    wait_until(lambda: sim.stats()["in_progress"] == 0, 5, "the simulator to see the client leave")


def test_make_client_reads_the_flask_config(sim):
    config = {"LLM_API": "sim", "LLM_BASE_URL": sim.url + "/", "LLM_MODEL": MODEL,
              "LLM_CONNECT_TIMEOUT": 1.5, "LLM_FIRST_TOKEN_TIMEOUT": 3.0, "LLM_TOTAL_TIMEOUT": 9.0,
              "LLM_KEEP_ALIVE": "10m"}
    client = make_client(config)
    assert isinstance(client, OllamaClient) and client.api == "ollama"
    assert (client.base_url, client.model, client.keep_alive) == (sim.url, MODEL, "10m")
    assert client.timeouts == Timeouts(1.5, 3.0, 9.0)
    assert "".join(client.stream_chat(build_messages("Config"), GenerationOptions(40, 0.7)))
    assert isinstance(make_client({**config, "LLM_API": "openai"}), OpenAIClient)
    with pytest.raises(ValueError, match="LLM_API must be one of"):
        make_client({**config, "LLM_API": "bard"})


GEVENT_SCRIPT = """
from gevent import monkey; monkey.patch_all()
import json, sys, time, gevent
from aiblog.ai.clients import OllamaClient, Timeouts, GenerationOptions
from aiblog.ai.llm_errors import LLMError
client = OllamaClient(sys.argv[1], "gemma3:270m", timeouts=Timeouts(2, 2, 2.5))
ticks = []
def ticker():
    while True:
        ticks.append(1); gevent.sleep(0.01)
gevent.spawn(ticker)
started = time.monotonic(); pieces = 0
try:
    for _ in client.stream_chat([{"role": "user", "content": "x"}], GenerationOptions(400, 0.7)):
        pieces += 1
    kind = "ok"
except LLMError as exc:
    kind = exc.kind
print(json.dumps({"kind": kind, "elapsed": time.monotonic() - started, "pieces": pieces, "ticks": len(ticks)}))
"""


def test_deadlines_hold_under_gevent_and_the_wait_does_not_block_other_greenlets(sim):
    sim.configure(tokens=5, tokens_per_second=1 / 1.9)  # only the watchdog stops it at 2.5 s
    result = subprocess.run([sys.executable, "-c", GEVENT_SCRIPT, sim.url], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["kind"] == "timeout"
    # At least the deadline, and stopped between the token at 1.9 s and the one at 3.8 s.
    assert outcome["elapsed"] >= 2.5 and outcome["pieces"] == 2
    assert outcome["ticks"] > 50   # other greenlets ran while this one waited on the LLM
