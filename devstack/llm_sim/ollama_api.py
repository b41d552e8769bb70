"""Ollama's side of the simulator: ``/``, ``/api/version``, ``/api/tags``,
``/api/chat`` and ``/api/generate``, and how Ollama spells an answer (NDJSON
events, then a ``done`` event with its counts and durations)."""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from .protocol import BadRequest, Generation, Pieces, Spelling, json_string, messages, now, stream_flag


class OllamaProtocol:
    """Ollama's endpoints, mixed into ``server.Simulator`` (which gives
    ``read_json``, ``check_model``, ``answer``, ``config`` and ``requested_models``)."""

    async def root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def ollama_version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.0.0-sim"})

    async def ollama_tags(self, request: web.Request) -> web.Response:
        stamp = now()
        return web.json_response({"models": [
            {"name": m, "model": m, "modified_at": stamp, "size": 0,
             "digest": hashlib.sha256(m.encode()).hexdigest(),
             "details": {"format": "gguf", "family": "sim", "parameter_size": "0",
                         "quantization_level": "none"}}
            for m in self.config.listed(self.requested_models)
        ]})

    async def ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        prompt = "\n".join(m["content"] for m in messages(body.get("messages")))
        limit = _option_int(body.get("options"), "num_predict")
        return await self.ollama_answer(request, body, model, prompt, limit, "message")

    async def ollama_generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        if isinstance(body.get("system"), str):
            prompt = body["system"] + "\n" + prompt
        limit = _option_int(body.get("options"), "num_predict")
        return await self.ollama_answer(request, body, model, prompt, limit, "response")

    async def ollama_answer(self, request: web.Request, body: dict[str, Any], model: str, prompt: str,
                            limit: int | None, field_name: str) -> web.StreamResponse:
        ask = Generation("ollama", model, prompt, limit, stream_flag(body, True),  # Ollama streams unless told not to
                         f'model "{model}" not found, try pulling it first')
        return await self.answer(request, ask, lambda pieces: spelling(ask, pieces, field_name))


def spelling(ask: Generation, pieces: Pieces, field_name: str) -> Spelling:
    """``field_name``: "message" (/api/chat, a chat message) or "response" (/api/generate, text)."""
    started = time.perf_counter()

    def value(text: str):
        return {"role": "assistant", "content": text} if field_name == "message" else text

    def done_event(text: str = "") -> dict[str, Any]:
        elapsed = int((time.perf_counter() - started) * 1e9)
        return {"model": ask.model, "created_at": now(), field_name: value(text),
                "done": True, "done_reason": ask.finish(pieces),
                "total_duration": elapsed, "load_duration": 0,
                "prompt_eval_count": len(ask.prompt.split()), "eval_count": len(pieces),
                "eval_duration": elapsed}

    # Events are spelled by hand, not json.dumps'ed one by one: streaming
    # is the simulator's hot path under load.
    if field_name == "message":
        template = ('{"model": %s, "created_at": "%%s", "message": {"role": "assistant", '
                    '"content": %%s}, "done": false}\n' % json.dumps(ask.model))
    else:
        template = '{"model": %s, "created_at": "%%s", "response": %%s, "done": false}\n' % json.dumps(ask.model)

    def events(batch: Pieces) -> bytes:
        stamp = now()
        return "".join(template % (stamp, json_string(p)) for p in batch).encode()

    return Spelling(whole=lambda: done_event("".join(pieces)), events=events,
                    tail=lambda: (json.dumps(done_event()) + "\n").encode(), content_type="application/x-ndjson")


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
