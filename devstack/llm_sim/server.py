"""blog-llm-sim: an LLM simulator speaking Ollama's and OpenAI's protocols.

Tests and load tests use it where a real model cannot run or would make
timings noisy. It answers like the real servers (same paths, same JSON
shapes, streaming and not, same kinds of 400s), with deterministic Markdown
built from the prompt, after a configurable time to first token and at a
configurable token rate; it can fail, hang or cut streams on purpose. It
counts every call so tests can prove caching and single-flight claims.

    blog-llm-sim --port 11434 --ttft 0.2 --tokens-per-second 50
    curl -s localhost:11434/sim/stats
    curl -s -XPOST localhost:11434/sim/config -d '{"error_rate": 1}'

Endpoints: Ollama ``/api/chat``, ``/api/generate``, ``/api/tags``,
``/api/version``, ``/``; OpenAI ``/v1/chat/completions``, ``/v1/models``;
control ``GET /sim/stats``, ``POST /sim/reset``, ``GET|POST /sim/config``.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import hashlib
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from aiohttp import web

DEFAULT_MODEL = "gemma3:270m"
HANG_SECONDS = 3600.0  # a "hung" request answers nothing for an hour (or until the client leaves)


# -- configuration -------------------------------------------------------------


@dataclass
class SimConfig:
    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    ttft: float = 0.05            # seconds before the first token
    tokens_per_second: float = 200.0  # 0 = as fast as possible
    tokens: int = 120             # answer length (the request's max tokens may cut it)
    answer_seconds: float | None = None  # if set: every answer takes this long in total
    error_rate: float = 0.0       # share of generations answered HTTP 500
    hang_rate: float = 0.0        # share that never answer
    cut_rate: float = 0.0         # share whose stream breaks off half-way
    seed: int = 0                 # seeds the error/hang/cut dice

    RATES = ("error_rate", "hang_rate", "cut_rate")

    def validate(self) -> None:
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise ValueError("models must be a non-empty list of names")
        for name in ("ttft", "tokens_per_second"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.tokens < 1:
            raise ValueError("tokens must be at least 1")
        if self.answer_seconds is not None and self.answer_seconds < self.ttft:
            raise ValueError("answer_seconds must be at least ttft")
        for name in self.RATES:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if sum(getattr(self, name) for name in self.RATES) > 1:
            raise ValueError("error_rate + hang_rate + cut_rate must not exceed 1")

    def updated(self, changes: dict[str, Any]) -> "SimConfig":
        """A copy with ``changes`` applied (JSON types checked), validated."""
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object of settings")
        types = {f.name: f.type for f in dataclasses.fields(self)}
        values = dataclasses.asdict(self)
        for key, value in changes.items():
            if key == "model":  # convenience: one model name
                key, value = "models", [value]
            if key not in types:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(types))}")
            if key == "models":
                if not isinstance(value, list):
                    raise ValueError("models must be a list of names")
            elif key == "answer_seconds" and value is None:
                pass
            elif key in ("tokens", "seed"):
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError(f"{key} must be an integer")
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number")
            values[key] = value
        new = SimConfig(**values)
        new.validate()
        return new

    def serves(self, model: str) -> bool:
        return "*" in self.models or model in self.models or f"{model}:latest" in self.models

    def listed(self, requested: set[str]) -> list[str]:
        """Names for /api/tags and /v1/models. With "*" (any model), the
        default model and every name asked for so far, so a client's
        model check passes as its generation would."""
        names = [m for m in self.models if m != "*"]
        if "*" in self.models:
            names += sorted({DEFAULT_MODEL, *requested} - set(names))
        return names


# -- deterministic text ----------------------------------------------------------

_WORDS = (
    "latency cache request worker process queue thread stream token model prompt "
    "server client metric dashboard alert budget deploy release rollback pipeline "
    "index query database replica shard lock timeout retry backoff circuit breaker "
    "throughput percentile benchmark profile memory socket kernel container cluster "
    "service ingress probe readiness liveness config secret volume network packet "
    "simple careful fast steady reliable small clear useful honest quiet robust"
).split()
_VERBS = "measure cache stream reduce keep avoid check test watch tune build ship".split()
_TOKEN = re.compile(r"\S+\s*|\s+")
_QUOTED_TITLE = re.compile(r'<title>\s*("(?:[^"\\]|\\.)*")\s*</title>', re.S)


def prompt_topic(prompt: str) -> str:
    """The title if the prompt carries one in the blog's template, else its start."""
    match = _QUOTED_TITLE.search(prompt)
    if match:
        try:
            return json.loads(match.group(1))[:120] or "Untitled"
        except ValueError:
            pass
    first_line = prompt.strip().splitlines()[0] if prompt.strip() else "Untitled"
    return first_line[:80]


def _sentence(rng: random.Random, words: int) -> str:
    picked = [rng.choice(_WORDS) for _ in range(words)]
    picked.insert(rng.randrange(1, words), rng.choice(_VERBS))
    return " ".join(picked).capitalize() + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(5, 8)) for _ in range(sentences))


@functools.lru_cache(maxsize=1024)
def answer_pieces(prompt: str, count: int) -> tuple[str, ...]:
    """``count`` text pieces ("tokens") of a Markdown post; same prompt, same pieces.

    Short blocks, so even a 60-token answer has a heading, a paragraph, a
    section and a list.
    """
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    blocks = [f"# {prompt_topic(prompt)}", _paragraph(rng, 2)]
    section = 0
    text = "\n\n".join(blocks)
    while len(_TOKEN.findall(text)) < count:
        section += 1
        blocks.append(f"## {rng.choice(_VERBS).capitalize()} the {rng.choice(_WORDS)} ({section})")
        blocks.append(_paragraph(rng, rng.randint(1, 2)))
        blocks.append("\n".join(f"- {_sentence(rng, rng.randint(2, 4))}"
                                for _ in range(rng.randint(2, 3))))
        text = "\n\n".join(blocks)
    return tuple(_TOKEN.findall(text)[:count])


# -- statistics -------------------------------------------------------------------


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


# -- the server ----------------------------------------------------------------------


class BadRequest(Exception):
    pass


class Simulator:
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

    # Ollama

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def ollama_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0-sim"})

    async def ollama_tags(self, request: web.Request) -> web.Response:
        now = _now()
        return web.json_response({"models": [
            {"name": m, "model": m, "modified_at": now, "size": 0,
             "digest": hashlib.sha256(m.encode()).hexdigest(),
             "details": {"format": "gguf", "family": "sim", "parameter_size": "0",
                         "quantization_level": "none"}}
            for m in self.config.listed(self.requested_models)
        ]})

    async def ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        messages = _messages(body.get("messages"))
        prompt = "\n".join(m["content"] for m in messages)
        limit = _option_int(body.get("options"), "num_predict")
        return await self.ollama_answer(request, body, model, prompt, limit,
                                        lambda text: {"role": "assistant", "content": text},
                                        "message")

    async def ollama_generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        if isinstance(body.get("system"), str):
            prompt = body["system"] + "\n" + prompt
        limit = _option_int(body.get("options"), "num_predict")
        return await self.ollama_answer(request, body, model, prompt, limit,
                                        lambda text: text, "response")

    async def ollama_answer(self, request, body, model, prompt, limit, final_value, field_name):
        stream = body.get("stream", True)  # Ollama streams unless told not to
        if not isinstance(stream, bool):
            raise BadRequest("stream must be a boolean")
        if not self.config.serves(model):
            self.stats.outcomes["model_not_found"] += 1
            return self.error_response(
                "ollama", 404, f'model "{model}" not found, try pulling it first')
        pieces = answer_pieces(prompt, _limit(self.config.tokens, limit))
        self.stats.generations += 1
        outcome = self.roll()
        self.stats.outcomes[outcome] += 1
        if outcome == "error":
            return self.error_response("ollama", 500, "simulated LLM failure")
        if outcome == "hang":
            await asyncio.sleep(HANG_SECONDS)
        started = time.perf_counter()

        def done_event() -> dict[str, Any]:
            elapsed = int((time.perf_counter() - started) * 1e9)
            done = {"model": model, "created_at": _now(), field_name: final_value(""),
                    "done": True, "done_reason": "length" if limit and len(pieces) >= limit else "stop",
                    "total_duration": elapsed, "load_duration": 0,
                    "prompt_eval_count": len(prompt.split()), "eval_count": len(pieces),
                    "eval_duration": elapsed}
            return done

        if not stream:
            await self.wait_whole_answer(len(pieces))
            if outcome == "cut":  # non-streaming: the connection drops before the answer
                _abort(request)
                return web.Response()
            final = done_event()
            final[field_name] = final_value("".join(pieces))
            return web.json_response(final)

        # Events are spelled by hand, not json.dumps'ed one by one: streaming
        # is the simulator's hot path under load.
        if field_name == "message":
            template = ('{"model": %s, "created_at": "%%s", "message": {"role": "assistant", '
                        '"content": %%s}, "done": false}\n' % json.dumps(model))
        else:
            template = '{"model": %s, "created_at": "%%s", "response": %%s, "done": false}\n' % json.dumps(model)

        def events(batch: tuple[str, ...]) -> bytes:
            now = _now()
            return "".join(template % (now, _json_string(p)) for p in batch).encode()

        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        if not await self.send_pieces(request, response, pieces, outcome, events):
            return response
        await response.write((json.dumps(done_event()) + "\n").encode())
        await response.write_eof()
        return response

    # OpenAI

    async def openai_models(self, request: web.Request) -> web.Response:
        created = int(self.stats.started)
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "blog-llm-sim"}
            for m in self.config.listed(self.requested_models)
        ]})

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        messages = _messages(body.get("messages"))
        stream = body.get("stream", False)  # OpenAI answers whole unless asked to stream
        if not isinstance(stream, bool):
            raise BadRequest("stream must be a boolean")
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise BadRequest("max_tokens must be a positive integer")
        if not self.config.serves(model):
            self.stats.outcomes["model_not_found"] += 1
            return self.error_response("openai", 404, f"The model `{model}` does not exist")
        prompt = "\n".join(m["content"] for m in messages)
        pieces = answer_pieces(prompt, _limit(self.config.tokens, limit))
        finish = "length" if limit and len(pieces) >= limit else "stop"
        self.stats.generations += 1
        outcome = self.roll()
        self.stats.outcomes[outcome] += 1
        if outcome == "error":
            return self.error_response("openai", 500, "simulated LLM failure")
        if outcome == "hang":
            await asyncio.sleep(HANG_SECONDS)
        ident = "chatcmpl-" + hashlib.sha1(f"{time.time_ns()}".encode()).hexdigest()[:20]
        created = int(time.time())

        if not stream:
            await self.wait_whole_answer(len(pieces))
            if outcome == "cut":
                _abort(request)
                return web.Response()
            return web.json_response({
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": "".join(pieces)}}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(pieces),
                          "total_tokens": len(prompt.split()) + len(pieces)},
            })

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        template = ('data: {"id": "%s", "object": "chat.completion.chunk", "created": %d, '
                    '"model": %s, "choices": [{"index": 0, "delta": {"content": %%s}, '
                    '"finish_reason": null}]}\n\n' % (ident, created, json.dumps(model)))

        def chunks(batch: tuple[str, ...]) -> bytes:
            return "".join(template % _json_string(p) for p in batch).encode()

        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": ""}))
        if not await self.send_pieces(request, response, pieces, outcome, chunks):
            return response
        await response.write(chunk({}, finish) + b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # shared timing

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
            _abort(request)  # like a crashed server: the chunked body never ends
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


def _messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list")
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("each message needs a role")
        if not isinstance(message.get("content"), str):
            raise BadRequest("each message needs a string content")
    return value


def _option_int(options: Any, name: str) -> int | None:
    if options is None:
        return None
    if not isinstance(options, dict):
        raise BadRequest("options must be an object")
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"options.{name} must be an integer")
    return value if value > 0 else None  # Ollama: -1 means no limit


def _limit(configured: int, requested: int | None) -> int:
    return min(configured, requested) if requested else configured


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


_json_string = functools.lru_cache(maxsize=65536)(json.dumps)  # pieces repeat a lot


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# -- command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    parser = argparse.ArgumentParser(
        prog="blog-llm-sim",
        description="LLM simulator speaking Ollama's and OpenAI's HTTP protocols. "
                    "Settings can be changed at runtime with POST /sim/config.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    parser.add_argument("--port", type=int, default=11434, help="port (default %(default)s, Ollama's)")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help=f"model name served; repeatable; '*' accepts any "
                             f"(default {DEFAULT_MODEL})")
    parser.add_argument("--ttft", type=float, default=defaults.ttft,
                        help="seconds to first token (default %(default)s)")
    parser.add_argument("--tokens-per-second", type=float, default=defaults.tokens_per_second,
                        help="token rate; 0 = no delay (default %(default)s)")
    parser.add_argument("--tokens", type=int, default=defaults.tokens,
                        help="tokens per answer (default %(default)s)")
    parser.add_argument("--answer-seconds", type=float, default=None,
                        help="total seconds per answer (overrides --tokens-per-second)")
    parser.add_argument("--error-rate", type=float, default=0.0, help="share answered HTTP 500")
    parser.add_argument("--hang-rate", type=float, default=0.0, help="share that never answer")
    parser.add_argument("--cut-rate", type=float, default=0.0,
                        help="share whose stream breaks off half-way")
    parser.add_argument("--seed", type=int, default=0, help="seed for the error/hang/cut dice")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    config = SimConfig(
        models=args.models or [DEFAULT_MODEL], ttft=args.ttft,
        tokens_per_second=args.tokens_per_second, tokens=args.tokens,
        answer_seconds=args.answer_seconds, error_rate=args.error_rate,
        hang_rate=args.hang_rate, cut_rate=args.cut_rate, seed=args.seed,
    )
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    simulator = Simulator(config)
    print(f"blog-llm-sim: serving {', '.join(config.models)} on http://{args.host}:{args.port} "
          f"(Ollama /api/*, OpenAI /v1/*, stats /sim/stats)", flush=True)
    try:
        # handler_cancellation: a client that gives up ends its handler (hung
        # requests included), so in_progress stays true.
        web.run_app(simulator.app(), host=args.host, port=args.port, backlog=2048,
                    access_log=None, print=None, handler_cancellation=True)
    except OSError as exc:
        print(f"blog-llm-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
