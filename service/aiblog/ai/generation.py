"""AI generation: one pass from a title to an answer. The AI page, the AI
API and the background worker call ``GenerationService.answer``, the one
entry point; the views only parse and render.

The order of steps for one request:
1. the title is checked by the one title rule (``models.clean_title``);
2. the AI cache (a hit never touches the LLM, nor the per-user rate limit,
   since a hit is free);
3. a miss pays the user's ``AI_RATE_LIMIT`` (``rate_limits``), before any
   wait, so parallel misses cannot all slip through; the attempt is given
   back if no LLM work is done for it after all;
4. the single-flight lease (``flight``: only the leader for a key calls the
   LLM; the others wait for its result, holding no LLM slot);
5. the leader takes one of ``LLM_MAX_INFLIGHT`` slots of its process, or the
   request is answered 429 with Retry-After (background jobs wait instead);
6. the circuit breaker fails fast while the LLM is known to be down;
7. the LLM call (``clients``, with the ``prompt``); only a complete answer is
   cached, as one ``Generation`` that the response is then made from.
"""
from __future__ import annotations

import hashlib
import threading
import time
import unicodedata
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

from flask import Flask, current_app

from ..expiring_lru import ExpiringLRU
from ..cooperative import after_pending_requests
from ..extensions import release_db_connection
from ..models import clean_title
from ..monitoring import metrics
from ..rate_limits import RateLimiter, Ticket
from ..rate_texts import parse_rates
from ..redis_store import RedisStore
from .circuit import CircuitBreaker
from .clients import GenerationOptions, LLMClient, make_client
from .flight import LocalFlight, Outcome, RedisFlight, RedisUnavailable
from .generated import Answer, Generation
from .generation_errors import GenerationError, InvalidRequest
from .llm_errors import LLMError
from .prompt import PROMPT_VERSION, build_messages

MODES = ("sync", "stream", "background")
# Sync and background answers are used whole: let the LLM's tokens pile up
# for this long whenever its stream runs dry (the answer completes at most
# this much later; measured: 12 ms of CPU per 120-token answer instead of 55).
WHOLE_ANSWER_READ_PAUSE = 0.25


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


def topic_key(title: str) -> str:
    """Which titles share one answer: NFKC, format and control characters
    dropped, whitespace collapsed, casefolded ("Hello  World" and "hello
    world" are one topic)."""
    text = unicodedata.normalize("NFKC", title)
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in {"Cc", "Cf"})
    return " ".join(text.split()).casefold()


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


class GenerationService:
    """Answers a title with a blog post: cache, single flight, LLM, cache."""

    def __init__(self, config: dict[str, Any], store: RedisStore, limiter: RateLimiter,
                 client: LLMClient | None = None):
        self.config = config
        self.store = store
        self.limiter = limiter
        self.ai_rates = parse_rates(config["AI_RATE_LIMIT"])
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

    def cache_key(self, title: str) -> str:
        parts = [topic_key(title), self.client.api, self.client.model, PROMPT_VERSION, self.options.key()]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def cached(self, key: str, record: bool = True) -> Generation | None:
        raw = self.cache.get(key, record=record)
        return Generation.loads(raw, cached=True) if raw is not None else None

    # -- the one entry point --------------------------------------------------
    def answer(self, title: Any, mode: Any = "sync", *, user_id: int | None = None,
               wait_for_slot: bool = False) -> Answer:
        """The answer for ``title``: cached, shared with an identical request
        in progress, or new from the LLM (whole, or streamed when ``mode`` is
        "stream"). A miss pays ``user_id``'s rate limit (none for a job, paid
        when it was queued). Bad input raises ``InvalidRequest``, other
        failures ``GenerationError``; for a stream, those before its first
        piece."""
        title, mode = validate_title(title), validate_mode(mode)
        key = self.cache_key(title)
        hit = self.cached(key)
        if hit is not None:
            metrics.AI_REQUESTS.labels(mode=mode, outcome="cached").inc()
            return Answer(title, generation=hit)
        ticket = self.charge(user_id) if user_id is not None else None
        try:
            answer = self._answer_miss(title, key, mode, wait_for_slot)
        except GenerationError as error:
            if ticket is not None and error.kind == "busy":
                ticket.refund()  # the LLM was too busy to start: no work done
            raise
        if ticket is not None and answer.free:
            ticket.refund()  # shared by an identical request, or cached meanwhile
        return answer

    def charge(self, user_id: int) -> Ticket:
        """Count one uncached generation against the user's ``AI_RATE_LIMIT``
        (429 beyond it). The background API calls it when it queues a job."""
        ticket = self.limiter.take("uncached AI generations", [("ai", str(user_id), self.ai_rates)])
        release_db_connection()  # a generation may wait seconds on the LLM
        return ticket

    def _answer_miss(self, title: str, key: str, mode: str, wait_for_slot: bool) -> Answer:
        deadline = time.monotonic() + self.wait_limit
        after_pending_requests()  # a new LLM call is set up when no page request waits
        while True:
            flight, token = self._lead(key)
            if token is None:
                shared = self._follow(flight, key, mode, deadline)
                if shared is not None:
                    return Answer(title, generation=shared)
                continue
            with ExitStack() as held:
                held.callback(flight.release, key, token)
                again = self.cached(key, record=False)  # someone may have finished meanwhile
                if again is not None:
                    metrics.AI_REQUESTS.labels(mode=mode, outcome="cached").inc()
                    return Answer(title, generation=again)
                held.enter_context(self._slot(flight, key, mode, wait_for_slot, deadline))
                if mode == "stream":
                    return self._open_stream(title, key, flight, held)
                return Answer(title, generation=self._generate_whole(title, key, flight, mode))

    # -- internals ------------------------------------------------------------
    def _lead(self, key: str):
        flight = self.flight
        try:
            return flight, flight.acquire(key)
        except RedisUnavailable:
            # Redis went away: de-duplicate within this process meanwhile.
            return self.local_flight, self.local_flight.acquire(key)

    def _follow(self, flight, key: str, mode: str, deadline: float) -> Generation | None:
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

    @contextmanager
    def _slot(self, flight, key: str, mode: str, wait: bool, deadline: float) -> Iterator[None]:
        """One of this process's LLM slots, held for the block; 429 when none is free."""
        taken = self._slots.acquire(blocking=False) or (
            wait and self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())))
        if not taken:
            metrics.AI_REQUESTS.labels(mode=mode, outcome="rejected").inc()
            # Let a waiter in another process (which may have a free slot) lead.
            flight.publish(key, {"state": "free"})
            raise GenerationError(429, f"the LLM is busy ({self.max_inflight} generations in progress); "
                                  "retry shortly", "busy", retry_after=2)
        try:
            yield
        finally:
            self._slots.release()

    def _generate_whole(self, title: str, key: str, flight, mode: str) -> Generation:
        started = time.monotonic()
        try:
            content = "".join(self._llm_pieces(title, batch_seconds=WHOLE_ANSWER_READ_PAUSE))
            if not content.strip():
                raise GenerationError(502, "the LLM returned an empty answer", "empty")
        except GenerationError as error:
            self._fail(flight, key, mode, error)
            raise
        return self._finish(title, key, content, time.monotonic() - started, mode, flight)

    def _open_stream(self, title: str, key: str, flight, held: ExitStack) -> Answer:
        """Wait for the LLM's first piece here (its failures get a proper
        status); the stream then owns the lease and the slot."""
        pieces = self._llm_pieces(title)
        try:
            first = next(pieces)
        except StopIteration:
            error = GenerationError(502, "the LLM returned an empty answer", "empty")
            self._fail(flight, key, "stream", error)
            raise error from None
        except GenerationError as error:
            self._fail(flight, key, "stream", error)
            raise
        answer = Answer(title)
        answer.pieces = self._stream_rest(answer, key, flight, first, pieces, held.pop_all())
        return answer

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

    def _stream_rest(self, answer: Answer, key, flight, first: str, pieces: Iterator[str],
                     held: ExitStack) -> Iterator[str]:
        started = time.monotonic()
        parts = [first]
        state = "abandoned"
        with held:  # the lease and the slot, released when the stream ends
            try:
                yield first
                for piece in pieces:
                    parts.append(piece)
                    yield piece
                state = "completed"
            except GenerationError as error:
                state = "failed"
                self._fail(flight, key, "stream", error)
                raise
            finally:
                pieces.close()
                if state == "completed":
                    answer.generation = self._finish(answer.title, key, "".join(parts),
                                                     time.monotonic() - started, "stream", flight)
                elif state == "abandoned":
                    flight.publish(key, {"state": "free"})  # the client left: let a waiter lead

    def _finish(self, title: str, key: str, content: str, seconds: float, mode: str, flight) -> Generation:
        after_pending_requests()  # rendering the answer's Markdown waits for pending page requests
        generation = Generation(title=title, content=content, model=self.client.model,
                                prompt_version=PROMPT_VERSION, simulated=self.simulated,
                                generation_seconds=round(seconds, 3))
        self.cache.set(key, generation.dumps())
        flight.publish(key, {"state": "done"})
        metrics.AI_GENERATION_SECONDS.observe(seconds)
        metrics.AI_REQUESTS.labels(mode=mode, outcome="generated").inc()
        return generation

    def _fail(self, flight, key: str, mode: str, error: GenerationError) -> None:
        metrics.AI_REQUESTS.labels(mode=mode, outcome="failed").inc()
        if error.kind == "busy":
            flight.publish(key, {"state": "free"})
        else:
            flight.publish(key, {"state": "failed", "error": error.to_dict()})


def init_app(app: Flask) -> GenerationService:
    services = app.extensions["aiblog"]
    service = GenerationService(app.config, services.redis, services.limits)
    app.extensions["aiblog.ai"] = service
    return service


def generation_service() -> GenerationService:
    return current_app.extensions["aiblog.ai"]
