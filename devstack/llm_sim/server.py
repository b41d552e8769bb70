"""The simulator's server: routes, counting, the outcome dice, timing, and the
one answer path both protocols share (``Simulator.answer``): model check,
outcome (ok, error, hang, cut), whole answer or stream on schedule. Each
protocol (``ollama_api``, ``openai_api``) only parses its requests and spells its
answers (a ``Spelling``)."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
from collections import Counter
from typing import Any, Awaitable, Callable

from aiohttp import web

from .sim_config import SimConfig
from .ollama_api import OllamaProtocol
from .openai_api import OpenAIProtocol
from .protocol import BadRequest, Generation, Pieces, Spelling, abort
from .text import answer_pieces

HANG_SECONDS = 3600.0  # a "hung" request answers nothing for an hour (or until the client leaves)


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.generations = 0
        self.in_progress = 0
        self.max_in_progress = 0
        self.by_endpoint: Counter[str] = Counter()
        self.by_protocol: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.started = time.time()

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "generations": self.generations,
            "in_progress": self.in_progress,
            "max_in_progress": self.max_in_progress,
            "by_endpoint": dict(self.by_endpoint),
            "by_protocol": dict(self.by_protocol),
            "outcomes": dict(self.outcomes),
            "since": self.started,
        }


class Simulator(OllamaProtocol, OpenAIProtocol):
    def __init__(self, config: SimConfig) -> None:
        config.validate()
        self.config = config
        self.stats = Stats()
        self.requested_models: set[str] = set()
        self._dice = random.Random(config.seed)

    # decisions and timing

    def roll(self) -> str:
        """ok | error | hang | cut, drawn from the configured rates."""
        c = self.config
        x = self._dice.random()
        for outcome, rate in (("error", c.error_rate), ("hang", c.hang_rate), ("cut", c.cut_rate)):
            if x < rate:
                return outcome
            x -= rate
        return "ok"

    def schedule(self, pieces: int) -> tuple[float, float]:
        """(seconds to first token, seconds between tokens)."""
        c = self.config
        if c.answer_seconds is not None:
            return c.ttft, (c.answer_seconds - c.ttft) / max(1, pieces)
        return c.ttft, (1.0 / c.tokens_per_second if c.tokens_per_second else 0.0)

    # request plumbing

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        routes = [
            web.get("/", self.root),
            web.get("/api/version", self.counted("ollama", self.ollama_version)),
            web.get("/api/tags", self.counted("ollama", self.ollama_tags)),
            web.post("/api/chat", self.counted("ollama", self.ollama_chat)),
            web.post("/api/generate", self.counted("ollama", self.ollama_generate)),
            web.get("/v1/models", self.counted("openai", self.openai_models)),
            web.post("/v1/chat/completions", self.counted("openai", self.openai_chat)),
            web.get("/sim/stats", self.get_stats),
            web.post("/sim/reset", self.reset_stats),
            web.get("/sim/config", self.get_config),
            web.post("/sim/config", self.set_config),
        ]
        app.add_routes(routes)
        return app

    def counted(self, protocol: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        async def wrapper(request: web.Request) -> web.StreamResponse:
            stats = self.stats
            stats.total += 1
            stats.by_endpoint[request.path] += 1
            stats.by_protocol[protocol] += 1
            stats.in_progress += 1
            stats.max_in_progress = max(stats.max_in_progress, stats.in_progress)
            try:
                return await handler(request)
            except BadRequest as exc:
                stats.outcomes["bad_request"] += 1
                return self.error_response(protocol, 400, str(exc))
            except ConnectionResetError:  # the client left mid-answer
                stats.outcomes["client_gone"] += 1
                return web.Response()
            finally:
                stats.in_progress -= 1
        return wrapper

    @staticmethod
    def error_response(protocol: str, status: int, message: str) -> web.Response:
        if protocol == "openai":
            kind = "invalid_request_error" if status < 500 else "server_error"
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "code": status}}
        else:
            body = {"error": message}
        return web.json_response(body, status=status)

    async def read_json(self, request: web.Request) -> dict[str, Any]:
        try:
            body = await request.json(loads=json.loads)
        except ValueError as exc:
            raise BadRequest(f"invalid JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        return body

    def check_model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model is required")
        if self.config.serves(model) and len(self.requested_models) < 100:
            self.requested_models.add(model)
        return model

    # the one answer path of both protocols

    async def answer(self, request: web.Request, ask: Generation,
                     spell: Callable[[Pieces], Spelling]) -> web.StreamResponse:
        """Model check, outcome, then the whole answer or a stream on schedule.
        ``spell`` is called once the answer starts (after a hang), so its
        timestamps and durations count from there."""
        if not self.config.serves(ask.model):
            self.stats.outcomes["model_not_found"] += 1
            return self.error_response(ask.protocol, 404, ask.not_found)
        pieces = answer_pieces(ask.prompt, _limit(self.config.tokens, ask.limit))
        self.stats.generations += 1
        outcome = self.roll()
        self.stats.outcomes[outcome] += 1
        if outcome == "error":
            return self.error_response(ask.protocol, 500, "simulated LLM failure")
        if outcome == "hang":
            await asyncio.sleep(HANG_SECONDS)
        spelling = spell(pieces)
        if not ask.stream:
            await self.wait_whole_answer(len(pieces))
            if outcome == "cut":  # non-streaming: the connection drops before the answer
                abort(request)
                return web.Response()
            return web.json_response(spelling.whole())
        response = web.StreamResponse(headers={"Content-Type": spelling.content_type, **spelling.headers})
        await response.prepare(request)
        if spelling.head:
            await response.write(spelling.head)
        if not await self.send_pieces(request, response, pieces, outcome, spelling.events):
            return response
        await response.write(spelling.tail())
        await response.write_eof()
        return response

    async def wait_whole_answer(self, count: int) -> None:
        first, gap = self.schedule(count)
        delay = first + gap * count
        if delay:
            await asyncio.sleep(delay)

    async def send_pieces(self, request, response, pieces, outcome, encode) -> bool:
        """Stream ``pieces`` on schedule; False if the stream was cut on purpose.

        Pieces that are due together go out in one write, so a slow event
        loop falls behind in batches instead of drifting.
        """
        first, gap = self.schedule(len(pieces))
        stop_at = len(pieces) // 2 if outcome == "cut" else len(pieces)
        start = time.monotonic() + first
        sent = 0
        while sent < stop_at:
            wait = start + sent * gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            due = stop_at if gap == 0 else min(
                stop_at, max(sent + 1, int((time.monotonic() - start) / gap) + 1))
            await response.write(encode(pieces[sent:due]))
            sent = due
        if outcome == "cut":
            abort(request)  # like a crashed server: the chunked body never ends
            return False
        return True

    # control endpoints

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_dict())

    async def reset_stats(self, request: web.Request) -> web.Response:
        in_progress = self.stats.in_progress
        self.stats.reset()
        self.stats.in_progress = in_progress  # still running; they decrement when done
        return web.json_response(self.stats.as_dict())

    async def get_config(self, request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.config))

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            new = self.config.updated(changes)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if "seed" in changes:  # setting a seed restarts its dice sequence
            self._dice = random.Random(new.seed)
        self.config = new
        return web.json_response(dataclasses.asdict(self.config))


def _limit(configured: int, requested: int | None) -> int:
    return min(configured, requested) if requested else configured
