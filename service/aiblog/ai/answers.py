"""What the AI page and the AI API both do with an answer: the rate limit
that only misses pay, the header that marks a free answer, the error body
and the Server-Sent Events stream."""
from __future__ import annotations

from flask import Response, jsonify

from ..extensions import release_db_connection
from ..rate_limits import Ticket, take
from .generation import Answer, GenerationError, generation_service
from .prompt import PROMPT_VERSION
from .sse import stream_response

CACHED_HEADER = "X-AI-Cached"


class MissCharge:
    """The per-user AI rate limit (``AI_RATE_LIMIT``). Called (as ``on_miss``),
    it counts the generation once the cache missed and before any LLM work,
    so parallel misses cannot all slip through (429 beyond the limit)."""

    def __init__(self, user_id: int):
        self.user_id = user_id
        self.ticket: Ticket | None = None

    def __call__(self) -> None:
        self.ticket = take("uncached AI generations", ("ai", str(self.user_id), "AI_RATE_LIMIT"))
        release_db_connection()  # a generation may wait seconds on the LLM

    def answer(self, title: str, mode: str) -> Answer:
        """``GenerationService.answer``, paying on a miss; the attempt is given
        back when no LLM work was done for this request after all: an answer
        shared by an identical request (or cached meanwhile), or an LLM too
        busy to start. Failures raise ``GenerationError`` as there."""
        try:
            answer = generation_service().answer(title, mode, on_miss=self)
        except GenerationError as exc:
            if exc.kind == "busy":
                self._refund()
            raise
        if answer.free:
            self._refund()
        return answer

    def _refund(self) -> None:
        if self.ticket is not None:
            self.ticket.refund()


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
