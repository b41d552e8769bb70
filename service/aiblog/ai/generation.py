"""AI generation: cache, single flight, backpressure and circuit breaker
around one LLM client. Routes and the background worker call ``Generator``.

The order of checks for one request:
1. the AI cache (a hit never touches the LLM; routes look here first, before
   the per-user rate limit, since a hit is free);
2. the single-flight lease (only the leader for a key calls the LLM; the
   others wait for its result, holding no LLM slot);
3. the leader takes one of ``LLM_MAX_INFLIGHT`` slots of its process, or the
   request is answered 429 with Retry-After (background jobs wait instead);
4. the circuit breaker fails fast while the LLM is known to be down;
5. the LLM call; only a complete answer is cached.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from flask import Flask, current_app

from .. import metrics
from ..expiring_lru import ExpiringLRU
from ..markup import render_markdown
from ..models import clean_title
from ..redis_store import RedisStore
from .circuit import CircuitBreaker
from .flight import LocalFlight, Outcome, RedisFlight, RedisUnavailable
from .llm import GenerationOptions, LLMClient, LLMError, make_client
from .prompt import PROMPT_VERSION, build_messages, normalize_title

MODES = ("sync", "stream", "background")
# Sync and background answers are used whole: let the LLM's tokens pile up
# for this long whenever its stream runs dry (the answer completes at most
# this much later; measured: 12 ms of CPU per 120-token answer instead of 55).
WHOLE_ANSWER_READ_PAUSE = 0.25


class InvalidRequest(ValueError):
    """Bad input from the user: answered 400 with this message."""


class GenerationError(Exception):
    def __init__(self, status_code: int, message: str, kind: str, retry_after: int | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.kind = kind
        self.retry_after = retry_after

    def to_dict(self) -> dict:
        return {"status": self.status_code, "message": self.message, "kind": self.kind,
                "retry_after": self.retry_after}

    @classmethod
    def from_dict(cls, data: dict | None) -> "GenerationError":
        data = data or {}
        return cls(int(data.get("status", 502)), str(data.get("message", "generation failed")),
                   str(data.get("kind", "failed")), data.get("retry_after"))

    @classmethod
    def from_llm(cls, exc: LLMError) -> "GenerationError":
        retry_after = getattr(exc, "retry_after", None)
        return cls(exc.status_code, str(exc), exc.kind,
                   retry_after=max(1, round(retry_after)) if retry_after else None)


def validate_title(title: Any) -> str:
    if not isinstance(title, str):
        raise InvalidRequest("'title' must be a string")
    try:
        return clean_title(title)  # the same rule as a post's title
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def validate_mode(mode: Any) -> str:
    if mode is None:
        return "sync"
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidRequest(f"'mode' must be one of: {', '.join(MODES)}")
    return mode


@dataclass
class Generation:
    title: str
    content: str
    model: str
    prompt_version: str
    simulated: bool
    generation_seconds: float | None = None
    cached: bool = False
    deduplicated: bool = False
    # Sanitized HTML of ``content``. Rendered once when the answer is made and
    # cached with it: Markdown parsing is most of the CPU a cache hit would cost.
    html: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.html:  # a new answer, or one cached before the HTML was
            self.html = render_markdown(self.content)

    def to_dict(self) -> dict:
        # Every field is a plain value: a shallow copy is asdict() without its deep copy.
        return dict(vars(self))

    def dumps(self) -> str:
        return json.dumps({"title": self.title, "content": self.content, "html": self.html, "model": self.model,
                           "prompt_version": self.prompt_version, "simulated": self.simulated,
                           "generation_seconds": self.generation_seconds})

    @classmethod
    def loads(cls, raw: bytes | str, **flags) -> "Generation":
        return cls(**json.loads(raw), **flags)


class ResultCache:
    """Finished generations: Redis when configured, else this process."""

    LOCAL_MAX = 2000

    def __init__(self, store: RedisStore, ttl: int, prefix: str = "aiblog:ai:result"):
        self.store = store
        self.ttl = ttl
        self.prefix = prefix
        self._local: ExpiringLRU[str] = ExpiringLRU(self.LOCAL_MAX, ttl)
        self._record = metrics.cache_result("ai")

    def get(self, key: str, record: bool = True) -> str | None:
        raw = None
        if self.store.enabled:
            raw = self.store.call(lambda r: r.get(f"{self.prefix}:{key}"))
        if raw is None and (not self.store.enabled or not self.store.available):
            # No Redis, or Redis down: answers made meanwhile live here.
            raw = self._local.get(key)
        if record:
            self._record(raw is not None)
        return raw

    def set(self, key: str, value: str) -> None:
        if self.store.enabled:
            self.store.call(lambda r: r.set(f"{self.prefix}:{key}", value, ex=self.ttl))
        if not self.store.enabled or not self.store.available:
            self._local.set(key, value)


class Generator:
    def __init__(self, config: dict[str, Any], store: RedisStore, client: LLMClient | None = None):
        self.config = config
        self.store = store
        self.client = client or make_client(config)
        self.options = GenerationOptions(max_tokens=config["LLM_MAX_TOKENS"], temperature=config["LLM_TEMPERATURE"])
        self.simulated = bool(config["LLM_SIMULATED"] or config["LLM_API"] == "sim")
        self.cache = ResultCache(store, config["AI_CACHE_TTL"])
        lease = config["LLM_TOTAL_TIMEOUT"] + 10
        self.local_flight = LocalFlight(lease)
        self.flight = RedisFlight(store, lease) if store.enabled else self.local_flight
        self.breaker = CircuitBreaker(config["CIRCUIT_FAILURES"], config["CIRCUIT_COOLDOWN"])
        self.max_inflight = config["LLM_MAX_INFLIGHT"]
        self._slots = threading.BoundedSemaphore(self.max_inflight)
        self.wait_limit = config["AI_SINGLE_FLIGHT_WAIT"]

    # -- keys -------------------------------------------------------------
    def cache_key(self, title: str) -> str:
        parts = [normalize_title(title), self.client.api, self.client.model, PROMPT_VERSION, self.options.key()]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def cached(self, key: str, record: bool = True) -> Generation | None:
        raw = self.cache.get(key, record=record)
        return Generation.loads(raw, cached=True) if raw is not None else None

    # -- the public operations -----------------------------------------------
    def generate(self, title: str, mode: str = "sync", wait_for_slot: bool = False) -> Generation:
        """Return the generation for ``title``: cached, shared or new."""
        hit = self.from_cache(title, mode)
        return hit if hit is not None else self.generate_fresh(title, mode, wait_for_slot)

    def from_cache(self, title: str, mode: str) -> Generation | None:
        """The cached answer for ``title``, if there is one: the fast path."""
        hit = self.cached(self.cache_key(title))
        if hit is not None:
            metrics.AI_REQUESTS.labels(mode=mode, outcome="cached").inc()
        return hit

    def generate_fresh(self, title: str, mode: str = "sync", wait_for_slot: bool = False) -> Generation:
        """The generation for ``title`` after ``from_cache`` missed: shared
        with an identical request in progress, or new from the LLM."""
        key = self.cache_key(title)
        deadline = time.monotonic() + self.wait_limit
        while True:
            flight, token = self._lead(key)
            if token is not None:
                try:
                    return self._generate_as_leader(flight, title, key, mode, wait_for_slot, deadline)
                finally:
                    flight.release(key, token)
            shared = self._follow(flight, title, key, mode, deadline)
            if shared is not None:
                return shared

    def open_stream(self, title: str) -> tuple[Generation | None, Iterator[str] | None]:
        """Start a streamed generation after ``from_cache`` missed.

        Returns ``(generation, None)`` when the answer is known meanwhile
        (produced by another request), else ``(None, pieces)``: the LLM has
        already sent its first piece, so failures before that are raised here
        as ``GenerationError`` with a proper status code.
        """
        key = self.cache_key(title)
        deadline = time.monotonic() + self.wait_limit
        while True:
            flight, token = self._lead(key)
            if token is not None:
                break
            shared = self._follow(flight, title, key, "stream", deadline)
            if shared is not None:
                return shared, None
        try:
            again = self.cached(key, record=False)  # someone may have finished meanwhile
            if again is not None:
                flight.release(key, token)
                metrics.AI_REQUESTS.labels(mode="stream", outcome="cached").inc()
                return again, None
            self._take_slot(wait=False, deadline=deadline, mode="stream")
        except BaseException:
            flight.release(key, token)
            raise
        try:
            pieces = self._llm_pieces(title)
            first = next(pieces)
        except StopIteration:
            self._slots.release()
            error = GenerationError(502, "the LLM returned an empty answer", "empty")
            self._fail(flight, key, token, "stream", error)
            raise error from None
        except GenerationError as error:
            self._slots.release()
            self._fail(flight, key, token, "stream", error)
            raise
        return None, self._stream_rest(title, key, flight, token, first, pieces)

    # -- internals ------------------------------------------------------------
    def _lead(self, key: str):
        flight = self.flight
        try:
            return flight, flight.acquire(key)
        except RedisUnavailable:
            # Redis went away: de-duplicate within this process meanwhile.
            return self.local_flight, self.local_flight.acquire(key)

    def _follow(self, flight, title: str, key: str, mode: str, deadline: float) -> Generation | None:
        try:
            outcome: Outcome = flight.wait(key, deadline, lambda: self.cache.get(key, record=False) is not None)
        except RedisUnavailable:
            return None  # retry; _lead falls back to the local flight
        if outcome.state == "done":
            raw = self.cache.get(key, record=False)
            if raw is not None:
                metrics.AI_REQUESTS.labels(mode=mode, outcome="deduplicated").inc()
                return Generation.loads(raw, deduplicated=True)
            return None
        if outcome.state == "failed":
            metrics.AI_REQUESTS.labels(mode=mode, outcome="failed").inc()
            raise GenerationError.from_dict(outcome.error)
        if outcome.state == "timeout":
            metrics.AI_REQUESTS.labels(mode=mode, outcome="failed").inc()
            raise GenerationError(504, "timed out waiting for an identical generation in progress", "timeout")
        return None  # "free": the leader gave up; try to lead

    def _take_slot(self, wait: bool, deadline: float, mode: str) -> None:
        if self._slots.acquire(blocking=False):
            return
        if wait and self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        metrics.AI_REQUESTS.labels(mode=mode, outcome="rejected").inc()
        raise GenerationError(429, f"the LLM is busy ({self.max_inflight} generations in progress); retry shortly",
                              "busy", retry_after=2)

    def _generate_as_leader(self, flight, title: str, key: str, mode: str, wait_for_slot: bool, deadline: float) -> Generation:
        again = self.cached(key, record=False)  # someone may have finished meanwhile
        if again is not None:
            metrics.AI_REQUESTS.labels(mode=mode, outcome="cached").inc()
            return again
        try:
            self._take_slot(wait_for_slot, deadline, mode)
        except GenerationError:
            # Let a waiter in another process (which may have a free slot) lead.
            flight.publish(key, {"state": "free"})
            raise
        started = time.monotonic()
        try:
            content = "".join(self._llm_pieces(title, batch_seconds=WHOLE_ANSWER_READ_PAUSE))
        except GenerationError as error:
            self._fail(flight, key, None, mode, error)
            raise
        finally:
            self._slots.release()
        if not content.strip():
            error = GenerationError(502, "the LLM returned an empty answer", "empty")
            self._fail(flight, key, None, mode, error)
            raise error
        return self._finish(title, key, content, time.monotonic() - started, mode, flight)

    def _llm_pieces(self, title: str, batch_seconds: float = 0.0) -> Iterator[str]:
        """The LLM's answer as it arrives, with breaker and in-flight gauge."""
        try:
            self.breaker.before_call()
        except LLMError as exc:
            raise GenerationError.from_llm(exc) from None
        metrics.LLM_INFLIGHT.inc()
        try:
            for piece in self.client.stream_chat(build_messages(title), self.options, batch_seconds):
                yield piece
        except LLMError as exc:
            self.breaker.record_failure()
            raise GenerationError.from_llm(exc) from None
        else:
            self.breaker.record_success()
        finally:
            metrics.LLM_INFLIGHT.dec()

    def _stream_rest(self, title, key, flight, token, first: str, pieces: Iterator[str]) -> Iterator[str]:
        started = time.monotonic()
        parts = [first]
        state = "abandoned"
        try:
            yield first
            for piece in pieces:
                parts.append(piece)
                yield piece
            state = "completed"
        except GenerationError as error:
            state = "failed"
            self._fail(flight, key, None, "stream", error)
            raise
        finally:
            self._slots.release()
            pieces.close()
            if state == "completed":
                self._finish(title, key, "".join(parts), time.monotonic() - started, "stream", flight)
            elif state == "abandoned":
                flight.publish(key, {"state": "free"})  # the client left: let a waiter lead
            flight.release(key, token)

    def _finish(self, title: str, key: str, content: str, seconds: float, mode: str, flight=None) -> Generation:
        generation = Generation(title=title, content=content, model=self.client.model,
                                prompt_version=PROMPT_VERSION, simulated=self.simulated,
                                generation_seconds=round(seconds, 3))
        self.cache.set(key, generation.dumps())
        (flight or self.flight).publish(key, {"state": "done"})
        metrics.AI_GENERATION_SECONDS.observe(seconds)
        metrics.AI_REQUESTS.labels(mode=mode, outcome="generated").inc()
        return generation

    def _fail(self, flight, key: str, token: str | None, mode: str, error: GenerationError) -> None:
        metrics.AI_REQUESTS.labels(mode=mode, outcome="failed").inc()
        if error.kind == "busy":
            flight.publish(key, {"state": "free"})
        else:
            flight.publish(key, {"state": "failed", "error": error.to_dict()})
        if token is not None:
            flight.release(key, token)


def init_app(app: Flask) -> Generator:
    generator = Generator(app.config, app.extensions["aiblog"].redis)
    app.extensions["aiblog.ai"] = generator
    return generator


def generator() -> Generator:
    return current_app.extensions["aiblog.ai"]
