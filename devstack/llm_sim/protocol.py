"""What the Ollama and OpenAI sides share: the request checks, the request
to generate as both ask it (``Generation``), and how a protocol spells its
answer (``Spelling``), which ``server.Simulator.answer`` sends."""
from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

Pieces = tuple[str, ...]


class BadRequest(Exception):
    pass


@dataclass
class Spelling:
    """How one protocol writes one answer: whole (a JSON body) or streamed
    (``head``, then the pieces in batches through ``events``, then ``tail()``)."""
    whole: Callable[[], dict[str, Any]]
    events: Callable[[Pieces], bytes]
    tail: Callable[[], bytes]
    content_type: str
    head: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclass
class Generation:
    """One request to generate, as both protocols ask it."""
    protocol: str
    model: str
    prompt: str
    limit: int | None    # the request's token limit, if any
    stream: bool
    not_found: str       # the protocol's words for an unknown model

    def finish(self, pieces: Pieces) -> str:
        return "length" if self.limit and len(pieces) >= self.limit else "stop"


def messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise BadRequest("messages must be a non-empty list")
    for message in value:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest("each message needs a role")
        if not isinstance(message.get("content"), str):
            raise BadRequest("each message needs a string content")
    return value


def stream_flag(body: dict[str, Any], default: bool) -> bool:
    stream = body.get("stream", default)
    if not isinstance(stream, bool):
        raise BadRequest("stream must be a boolean")
    return stream


def abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


json_string = functools.lru_cache(maxsize=65536)(json.dumps)  # pieces repeat a lot


def now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
