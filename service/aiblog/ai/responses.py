"""How the AI page and the AI API answer over HTTP: the header that marks a
free answer, the error answer, and the Server-Sent Events stream.

The views parse, call ``GenerationService.answer`` and hand its ``Answer``
here; nothing here decides anything about generating.
"""
from __future__ import annotations

import json
from typing import Iterator

from flask import Response, stream_with_context

from ..errors import error_response
from .generated import Answer
from .generation import generation_service
from .generation_errors import GenerationError
from .prompt import PROMPT_VERSION

CACHED_HEADER = "X-AI-Cached"


def mark_free(response: Response, answer: Answer) -> Response:
    if answer.free:
        response.headers[CACHED_HEADER] = "1"
    return response


def error_json(error: GenerationError) -> Response:
    return error_response(error.status_code, error.kind, error.message, retry_after=error.retry_after, as_json=True)


def event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream(answer: Answer) -> Response:
    """The answer as Server-Sent Events: ``meta``, ``token``s, then ``done``
    with the whole ``Generation`` (or ``error``, once headers are sent)."""
    service = generation_service()
    meta = {"title": answer.title, "model": service.client.model, "prompt_version": PROMPT_VERSION,
            "simulated": service.simulated}

    def events() -> Iterator[str]:
        known = answer.generation
        if known is not None:  # cached or shared: whole at once
            yield event("meta", {**meta, "cached": known.cached, "deduplicated": known.deduplicated})
            yield event("token", {"text": known.content})
            yield event("done", known.to_dict())
            return
        yield event("meta", {**meta, "cached": False, "deduplicated": False})
        try:
            for piece in answer.pieces:
                yield event("token", {"text": piece})
        except GenerationError as exc:
            yield event("error", exc.to_dict())
            return
        yield event("done", answer.generation.to_dict())  # set by the service as the stream completed

    response = Response(stream_with_context(events()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return mark_free(response, answer)
