"""What every LLM protocol client shares: the streamed exchange, its three
time limits and the translation of every failure into an ``LLMError``.

Three time limits, each raising ``LLMTimeout``:
- connect: TCP connect to the LLM server;
- first token: from sending the request to the first piece of text (a cold
  model load shows up here);
- total: the whole answer.
The circuit breaker is not here: the generation layer owns it (one per process).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import httpx

from ...monitoring import metrics
from ..llm_errors import LLMError, LLMStreamCut, LLMTimeout, LLMUnavailable
from .deadlines import Deadlines, Timeouts


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int
    temperature: float

    def key(self) -> str:
        """Stable text for cache keys: equal options give equal keys."""
        return f"max_tokens={self.max_tokens},temperature={self.temperature:g}"


class LLMClient:
    """Base for the protocol clients; subclasses say how to ask and how to read."""

    api = "base"
    chat_path = ""

    def __init__(self, base_url: str, model: str, *, timeouts: Timeouts = Timeouts(),
                 keep_alive: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeouts = timeouts
        self.keep_alive = keep_alive
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
        body = self._chat_body(messages, options)
        got_text = False

        def pause() -> float:
            return batch_seconds if got_text else 0.0  # the first token is never held back

        with self._exchange(body) as (response, deadlines):
            for piece in self._read_stream(response, pause):
                deadlines.check()
                if not piece:
                    continue
                if not got_text:
                    got_text = True
                    metrics.LLM_TTFT_SECONDS.observe(deadlines.first_token())
                metrics.LLM_TOKENS.inc()
                yield piece

    # -- protocol hooks ----------------------------------------------------

    def _chat_body(self, messages: list[dict], options: GenerationOptions) -> dict:
        raise NotImplementedError

    def _read_stream(self, response: httpx.Response, pause: Callable[[], float]) -> Iterator[str]:
        """The text pieces of a streamed answer; read its lines with ``lines.lines(response, pause)``."""
        raise NotImplementedError

    def _error_detail(self, data: Any) -> str | None:
        raise NotImplementedError

    # -- shared machinery --------------------------------------------------

    @contextmanager
    def _exchange(self, body: dict) -> Iterator[tuple[httpx.Response, Deadlines]]:
        """POST ``body`` to the chat endpoint; yield the open response.

        Translates every transport problem into an ``LLMError`` subclass.
        """
        deadlines = Deadlines(self.timeouts)
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
