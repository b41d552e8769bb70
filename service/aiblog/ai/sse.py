"""Server-Sent Events framing for streamed generations."""
from __future__ import annotations

import json
from typing import Iterator

from flask import Response, stream_with_context

from .generation import Generation, GenerationError


def event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def stream_response(known: Generation | None, pieces: Iterator[str] | None, meta: dict) -> Response:
    """``known`` is a finished (cached or shared) answer; else ``pieces``
    streams from the LLM and the final event carries the whole text."""

    def events() -> Iterator[str]:
        if known is not None:
            yield event("meta", {**meta, "cached": known.cached, "deduplicated": known.deduplicated})
            yield event("token", {"text": known.content})
            yield event("done", known.to_dict())
            return
        yield event("meta", {**meta, "cached": False, "deduplicated": False})
        parts: list[str] = []
        try:
            for piece in pieces:
                parts.append(piece)
                yield event("token", {"text": piece})
        except GenerationError as exc:
            # Headers are already sent; the error travels as an event.
            yield event("error", exc.to_dict())
            return
        done = Generation(title=meta["title"], content="".join(parts), model=meta["model"],
                          prompt_version=meta["prompt_version"], simulated=meta["simulated"])
        yield event("done", done.to_dict())

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
