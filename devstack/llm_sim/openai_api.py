"""OpenAI's side of the simulator: ``/v1/models`` and ``/v1/chat/completions``,
and how OpenAI spells an answer (a chat.completion, or server-sent
chat.completion.chunk events ending in ``[DONE]``)."""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from .protocol import BadRequest, Generation, Pieces, Spelling, json_string, messages, stream_flag


class OpenAIProtocol:
    """OpenAI's endpoints, mixed into ``server.Simulator`` (which gives
    ``read_json``, ``check_model``, ``answer``, ``config``, ``stats`` and ``requested_models``)."""

    async def openai_models(self, request: web.Request) -> web.Response:
        created = int(self.stats.started)
        return web.json_response({"object": "list", "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "blog-llm-sim"}
            for m in self.config.listed(self.requested_models)
        ]})

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = self.check_model(body)
        prompt = "\n".join(m["content"] for m in messages(body.get("messages")))
        stream = stream_flag(body, False)  # OpenAI answers whole unless asked to stream
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise BadRequest("max_tokens must be a positive integer")
        ask = Generation("openai", model, prompt, limit, stream, f"The model `{model}` does not exist")
        return await self.answer(request, ask, lambda pieces: spelling(ask, pieces))


def spelling(ask: Generation, pieces: Pieces) -> Spelling:
    ident = "chatcmpl-" + hashlib.sha1(f"{time.time_ns()}".encode()).hexdigest()[:20]
    created = int(time.time())
    finish = ask.finish(pieces)
    prompt_tokens = len(ask.prompt.split())

    def whole() -> dict[str, Any]:
        return {
            "id": ident, "object": "chat.completion", "created": created, "model": ask.model,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": "".join(pieces)}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                      "total_tokens": prompt_tokens + len(pieces)},
        }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                "model": ask.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    # Spelled by hand, as Ollama's events are: the hot path under load.
    template = ('data: {"id": "%s", "object": "chat.completion.chunk", "created": %d, '
                '"model": %s, "choices": [{"index": 0, "delta": {"content": %%s}, '
                '"finish_reason": null}]}\n\n' % (ident, created, json.dumps(ask.model)))

    def chunks(batch: Pieces) -> bytes:
        return "".join(template % json_string(p) for p in batch).encode()

    return Spelling(whole=whole, events=chunks, tail=lambda: chunk({}, finish) + b"data: [DONE]\n\n",
                    content_type="text/event-stream", head=chunk({"role": "assistant", "content": ""}),
                    headers={"Cache-Control": "no-cache"})
