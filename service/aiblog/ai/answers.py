"""What the AI page and the AI API both do with an answer: the rate limit
that only misses pay, the header that marks a free answer, the error body
and the Server-Sent Events stream."""
from __future__ import annotations

from flask import Response, current_app, jsonify

from .generation import Answer, GenerationError, generation_service
from .prompt import PROMPT_VERSION
from .sse import stream_response

CACHED_HEADER = "X-AI-Cached"


def ai_limit() -> str:
    return current_app.config["AI_RATE_LIMIT"]


def not_cached(response: Response) -> bool:
    # Only what the LLM made for this request counts: an answer shared by an
    # identical request in progress (or cached meanwhile) is free too.
    return response.headers.get(CACHED_HEADER) != "1"


def mark_free(response: Response, answer: Answer) -> Response:
    if answer.free:
        response.headers[CACHED_HEADER] = "1"
    return response


def error_json(exc: GenerationError) -> Response:
    response = jsonify(error=exc.kind, message=exc.message, status=exc.status_code)
    response.status_code = exc.status_code
    if exc.retry_after:
        response.headers["Retry-After"] = str(int(exc.retry_after))
    return response


def stream(title: str, answer: Answer) -> Response:
    service = generation_service()
    meta = {"title": title, "model": service.client.model, "prompt_version": PROMPT_VERSION,
            "simulated": service.simulated}
    return mark_free(stream_response(answer.generation, answer.pieces, meta), answer)
