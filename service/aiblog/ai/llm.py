"""LLM clients: Ollama's native API and OpenAI-compatible servers.

Both stream: ``stream_chat`` yields text pieces as they arrive, so a page can
show the first token while the model is still writing. Every failure becomes
an ``LLMError`` subclass whose message a user can read and whose
``status_code`` the web layer answers with (502 bad answer or cut stream,
503 unreachable, 504 too slow).

Three time limits, each raising ``LLMTimeout``:
- connect: TCP connect to the LLM server;
- first token: from sending the request to the first piece of text (a cold
  model load shows up here);
- total: the whole answer.
httpx's read timeout bounds every single wait on the socket; a watchdog
(a timer that shuts the socket down) enforces the first-token and total
deadlines exactly, even while tokens keep trickling in. It works with plain
threads and under gevent's monkey patching (gunicorn's gevent workers).
"""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import httpx

from .. import metrics

if TYPE_CHECKING:
    from .circuit import CircuitBreaker


class LLMError(Exception):
    """The LLM gave no usable answer. The message is safe to show to users."""

    status_code = 502
    kind = "bad_response"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, when waiting is known to help


class LLMUnavailable(LLMError):
    """Refused, unreachable, overloaded, model missing, or circuit open."""

    status_code = 503
    kind = "unavailable"


class LLMTimeout(LLMError):
    """No connection, no first token, or no complete answer in time."""

    status_code = 504
    kind = "timeout"


class LLMStreamCut(LLMError):
    """The answer stream ended before the server's end marker."""

    status_code = 502
    kind = "stream_cut"


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int
    temperature: float

    def key(self) -> str:
        """Stable text for cache keys: equal options give equal keys."""
        return f"max_tokens={self.max_tokens},temperature={self.temperature:g}"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 2.0
    first_token: float = 30.0
    total: float = 120.0


class _Deadlines:
    """Watches one exchange and shuts its socket down when a deadline passes.

    A blocked read then fails at once, and the caller asks ``expired`` which
    limit it was.
    """

    def __init__(self, timeouts: Timeouts, *, first_token: bool) -> None:
        self.started = time.monotonic()
        self._timeouts = timeouts
        self._first_token_at = self.started + timeouts.first_token if first_token else None
        self._total_at = self.started + timeouts.total
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._socket: socket.socket | None = None
        self._done = False
        self.got_first_token = False
        self.expired: str | None = None  # the message, once a deadline passed

    def read_timeout(self) -> float:
        """httpx read timeout: no single wait may outlast the first deadline."""
        if self._first_token_at is not None:
            return min(self._timeouts.first_token, self._timeouts.total)
        return self._timeouts.total

    def watch(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        self._socket = stream.get_extra_info("socket") if stream is not None else None
        self._arm()

    def first_token(self) -> float:
        """Note the first token; returns the time it took."""
        self.got_first_token = True
        return time.monotonic() - self.started

    def check(self) -> None:
        """Raise if a deadline has passed (also catches one passed before the
        timer could fire)."""
        if self.expired is None:
            self._evaluate(time.monotonic())
        if self.expired is not None:
            raise LLMTimeout(self.expired)

    def cancel(self) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()

    def _next_deadline(self) -> float:
        if self._first_token_at is not None and not self.got_first_token:
            return min(self._first_token_at, self._total_at)
        return self._total_at

    def _arm(self) -> None:
        with self._lock:
            if self._done:
                return
            delay = max(0.0, self._next_deadline() - time.monotonic())
            self._timer = threading.Timer(delay, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        if self._evaluate(time.monotonic()):
            self._shutdown_socket()
        else:
            self._arm()  # the first token came in time; now wait for the total

    def _evaluate(self, now: float) -> bool:
        if self._first_token_at is not None and not self.got_first_token and now >= self._first_token_at:
            self.expired = (f"the LLM sent no first token within "
                            f"{self._timeouts.first_token:g} s")
        elif now >= self._total_at:
            self.expired = f"the LLM did not finish its answer within {self._timeouts.total:g} s"
        return self.expired is not None

    def _shutdown_socket(self) -> None:
        with self._lock:
            if self._done or self._socket is None:
                return
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed: the read has ended anyway


class LLMClient:
    """Base for the protocol clients; subclasses say how to ask and how to read."""

    api = "base"
    chat_path = ""
    models_path = ""

    def __init__(self, base_url: str, model: str, *, timeouts: Timeouts = Timeouts(),
                 keep_alive: str | None = None, circuit: "CircuitBreaker | None" = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeouts = timeouts
        self.keep_alive = keep_alive
        self.circuit = circuit
        # trust_env=False: a proxy from the environment must not sit between
        # the blog and an LLM on loopback or in the cluster.
        self._http = httpx.Client(
            base_url=self.base_url, trust_env=False,
            timeout=httpx.Timeout(timeouts.total, connect=timeouts.connect),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.model} at {self.base_url}>"

    def close(self) -> None:
        self._http.close()

    # -- public API --------------------------------------------------------

    def stream_chat(self, messages: list[dict], options: GenerationOptions,
                    batch_seconds: float = 0.0) -> Iterator[str]:
        """Yield the answer's text pieces as they arrive.

        ``batch_seconds``: once text flows, let the tokens pile up in the
        socket for this long whenever it runs dry, so that they come in one
        read. For callers that want the whole answer, not each token: an LLM
        sends a small chunk per token, and being woken for each one costs
        CPU on every token (figures at ``generation.WHOLE_ANSWER_READ_PAUSE``).

        Raises an ``LLMError`` subclass; pieces already yielded are then an
        incomplete answer that must not be kept.
        """
        self._before_call()
        body = self._chat_body(messages, options, stream=True)
        got_text = False

        def pause() -> float:
            return batch_seconds if got_text else 0.0  # the first token is never held back

        try:
            with self._exchange(body, first_token=True) as (response, deadlines):
                for piece in self._read_stream(response, pause):
                    deadlines.check()
                    if not piece:
                        continue
                    if not got_text:
                        got_text = True
                        metrics.LLM_TTFT_SECONDS.observe(deadlines.first_token())
                    metrics.LLM_TOKENS.inc()
                    yield piece
        except LLMError:
            self._record(success=False)
            raise
        except GeneratorExit:
            # The consumer stopped reading. Text arrived, so the LLM works.
            if got_text:
                self._record(success=True)
            raise
        self._record(success=True)

    def chat(self, messages: list[dict], options: GenerationOptions) -> str:
        """The whole answer from one non-streaming request (total timeout only)."""
        self._before_call()
        body = self._chat_body(messages, options, stream=False)
        try:
            with self._exchange(body, first_token=False) as (response, deadlines):
                response.read()
                deadlines.check()
                text, tokens = self._parse_answer(_json(response))
        except LLMError:
            self._record(success=False)
            raise
        if tokens:
            metrics.LLM_TOKENS.inc(tokens)
        self._record(success=True)
        return text

    def model_available(self) -> bool:
        """True if the server answers and lists ``self.model``; never raises."""
        try:
            response = self._http.get(
                self.models_path,
                timeout=httpx.Timeout(self.timeouts.connect, read=max(self.timeouts.connect, 2.0)),
            )
            if response.status_code != 200:
                return False
            return self.model in self._listed_models(response.json())
        except (httpx.HTTPError, ValueError, TypeError, AttributeError):
            return False

    # -- protocol hooks ----------------------------------------------------

    def _chat_body(self, messages: list[dict], options: GenerationOptions, *, stream: bool) -> dict:
        raise NotImplementedError

    def _read_stream(self, response: httpx.Response, pause: Callable[[], float]) -> Iterator[str]:
        """The text pieces of a streamed answer; read its lines with ``_lines(response, pause)``."""
        raise NotImplementedError

    def _parse_answer(self, data: Any) -> tuple[str, int]:
        raise NotImplementedError

    def _listed_models(self, data: Any) -> set[str]:
        raise NotImplementedError

    def _error_detail(self, data: Any) -> str | None:
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------

    def _before_call(self) -> None:
        if self.circuit is not None:
            self.circuit.before_call()

    def _record(self, *, success: bool) -> None:
        if self.circuit is not None:
            (self.circuit.record_success if success else self.circuit.record_failure)()

    @contextmanager
    def _exchange(self, body: dict, *, first_token: bool) -> Iterator[tuple[httpx.Response, _Deadlines]]:
        """POST ``body`` to the chat endpoint; yield the open response.

        Translates every transport problem into an ``LLMError`` subclass.
        """
        deadlines = _Deadlines(self.timeouts, first_token=first_token)
        timeout = httpx.Timeout(deadlines.read_timeout(), connect=self.timeouts.connect)
        answered = False
        try:
            with self._http.stream("POST", self.chat_path, json=body, timeout=timeout) as response:
                answered = True
                deadlines.watch(response)
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response)
                yield response, deadlines
        except httpx.ConnectTimeout:
            raise LLMTimeout(f"could not connect to the LLM at {self.base_url} within "
                             f"{self.timeouts.connect:g} s") from None
        except httpx.ConnectError as exc:
            raise LLMUnavailable(f"the LLM at {self.base_url} is unreachable ({exc})") from None
        except httpx.TimeoutException:
            if deadlines.expired:
                raise LLMTimeout(deadlines.expired) from None
            if not first_token:
                raise LLMTimeout(f"the LLM did not answer within {self.timeouts.total:g} s") from None
            if not deadlines.got_first_token:
                raise LLMTimeout(f"the LLM sent no first token within "
                                 f"{self.timeouts.first_token:g} s") from None
            raise LLMTimeout(f"the LLM sent nothing for {deadlines.read_timeout():g} s "
                             f"in the middle of its answer") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if deadlines.expired:
                raise LLMTimeout(deadlines.expired) from None
            if not answered:
                raise LLMError(f"the LLM at {self.base_url} closed the connection "
                               f"without answering ({exc})") from None
            raise LLMStreamCut(f"the LLM connection broke in the middle of the answer ({exc})") from None
        except LLMStreamCut:
            if deadlines.expired:  # our watchdog ended the stream
                raise LLMTimeout(deadlines.expired) from None
            raise
        except httpx.HTTPError as exc:
            raise LLMError(f"talking to the LLM failed ({type(exc).__name__}: {exc})") from None
        finally:
            deadlines.cancel()

    def _http_error(self, response: httpx.Response) -> LLMError:
        try:
            detail = self._error_detail(response.json())
        except ValueError:
            detail = None
        detail = detail or response.text.strip()[:200] or response.reason_phrase
        status = response.status_code
        where = f"the LLM at {self.base_url}"
        if status == 404:
            return LLMUnavailable(f"{where} does not serve model {self.model!r} ({detail})")
        if status in (429, 502, 503, 504):
            retry = response.headers.get("Retry-After")
            return LLMUnavailable(f"{where} is busy or unavailable (HTTP {status}: {detail})",
                                  retry_after=float(retry) if retry and retry.isdigit() else None)
        return LLMError(f"{where} answered HTTP {status}: {detail}")


class OllamaClient(LLMClient):
    """Ollama's native API: ``POST /api/chat`` (NDJSON stream), ``GET /api/tags``."""

    api = "ollama"
    chat_path = "/api/chat"
    models_path = "/api/tags"

    def _chat_body(self, messages, options, *, stream):
        body = {
            "model": self.model,
            "messages": messages,
            "stream": stream,
            "options": {"num_predict": options.max_tokens, "temperature": options.temperature},
        }
        if self.keep_alive:
            body["keep_alive"] = self.keep_alive
        return body

    def _read_stream(self, response, pause):
        for line in _lines(response, pause):
            if not line.strip():
                continue
            event = _json_line(line)
            if event.get("error"):
                raise LLMError(f"the LLM reported an error: {event['error']}")
            message = event.get("message") or {}
            yield message.get("content") or ""
            if event.get("done"):
                return
        raise LLMStreamCut("the LLM stream ended before its end marker (\"done\": true)")

    def _parse_answer(self, data):
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise LLMError("the LLM answer has no message")
        if not data.get("done"):
            raise LLMStreamCut("the LLM answer is not marked done")
        return data["message"].get("content") or "", int(data.get("eval_count") or 0)

    def _listed_models(self, data):
        names = set()
        for entry in data.get("models", []):
            for name in (entry.get("name"), entry.get("model")):
                if name:
                    names.add(name)
                    names.add(name.removesuffix(":latest"))  # "gemma3" means "gemma3:latest"
        return names

    def _error_detail(self, data):
        return data.get("error") if isinstance(data, dict) else None


class OpenAIClient(LLMClient):
    """OpenAI-compatible servers (llama.cpp's llama-server, vLLM, Ollama's /v1):
    ``POST /v1/chat/completions`` (SSE stream), ``GET /v1/models``."""

    api = "openai"
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"

    def _chat_body(self, messages, options, *, stream):
        return {
            "model": self.model,
            "messages": messages,
            "stream": stream,
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
        }

    def _read_stream(self, response, pause):
        for line in _lines(response, pause):
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" lines
            payload = line[len("data:"):].strip()
            if payload == "[DONE]":
                return
            event = _json_line(payload)
            if event.get("error"):
                raise LLMError(f"the LLM reported an error: {self._error_detail(event)}")
            for choice in event.get("choices") or []:
                yield (choice.get("delta") or {}).get("content") or ""
                if choice.get("finish_reason"):
                    return  # complete; a trailing [DONE] adds nothing
        raise LLMStreamCut("the LLM stream ended before its end marker (data: [DONE])")

    def _parse_answer(self, data):
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise LLMError("the LLM answer has no choices[0].message") from None
        usage = data.get("usage") or {}
        return text, int(usage.get("completion_tokens") or 0)

    def _listed_models(self, data):
        return {entry.get("id") for entry in data.get("data", []) if entry.get("id")}

    def _error_detail(self, data):
        if not isinstance(data, dict):
            return None
        error = data.get("error")
        if isinstance(error, dict):
            return error.get("message")
        return error


CLIENTS: dict[str, type[LLMClient]] = {
    "ollama": OllamaClient,
    "sim": OllamaClient,  # the simulator speaks Ollama's protocol
    "openai": OpenAIClient,
}


def make_client(config: Mapping[str, Any], *, circuit: "CircuitBreaker | None" = None) -> LLMClient:
    """The configured client (Flask ``app.config`` keys ``LLM_*``).

    With ``circuit``, every call checks and feeds that breaker; without, the
    caller owns the breaker (the generation layer does). Create one client
    per process and keep it: it holds a connection pool.
    """
    api = config.get("LLM_API", "sim")
    try:
        client_class = CLIENTS[api]
    except KeyError:
        raise ValueError(f"LLM_API must be one of {', '.join(CLIENTS)}, got {api!r}") from None
    return client_class(
        config.get("LLM_BASE_URL", "http://127.0.0.1:11434"),
        config.get("LLM_MODEL", "gemma3:270m"),
        timeouts=Timeouts(
            connect=float(config.get("LLM_CONNECT_TIMEOUT", 2.0)),
            first_token=float(config.get("LLM_FIRST_TOKEN_TIMEOUT", 30.0)),
            total=float(config.get("LLM_TOTAL_TIMEOUT", 120.0)),
        ),
        keep_alive=config.get("LLM_KEEP_ALIVE") or None,
        circuit=circuit,
    )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise LLMError(f"the LLM answered something that is not JSON: "
                       f"{response.text[:120]!r}") from None


# A read that took longer than this waited on the network: the socket is
# drained, and this is when a pause lets the next tokens accumulate. (Chunks
# already buffered come back in microseconds and are never paused for.)
_BLOCKED_READ_SECONDS = 0.001


def _lines(response: httpx.Response, pause: Callable[[], float]) -> Iterator[str]:
    """The lines of a streamed body as they arrive. After a read that had to
    wait for the network, sleep ``pause()`` seconds (0: not at all)."""
    pending = b""
    chunks = response.iter_bytes()
    while True:
        asked = time.monotonic()
        chunk = next(chunks, None)
        if chunk is None:
            break
        waited = time.monotonic() - asked
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:  # split before decoding: a character never straddles two lines
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
        if waited > _BLOCKED_READ_SECONDS:
            wait = pause()
            if wait > 0:
                time.sleep(wait)  # cooperative under gevent
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", errors="replace")


def _json_line(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        raise LLMError(f"the LLM sent a line that is not JSON: {line[:120]!r}") from None
    if not isinstance(event, dict):
        raise LLMError(f"the LLM sent an unexpected line: {line[:120]!r}")
    return event
