"""Why a generation request has no answer, as the views and the worker see it.

``GenerationError`` carries the HTTP status, a ``kind`` for programs, a
message for people and, when waiting helps, ``retry_after``; the LLM
clients' own errors (``llm_errors``) become one with their public message.
"""
from __future__ import annotations

import logging

from .llm_errors import LLMError

log = logging.getLogger(__name__)


class GenerationError(Exception):
    """Why there is no answer: ``status_code``, a ``kind`` for programs, a
    ``message`` for people, and ``retry_after`` seconds when waiting helps."""

    def __init__(self, status_code: int, message: str, kind: str, retry_after: int | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.kind = kind
        self.retry_after = retry_after

    def to_dict(self) -> dict:
        return {"status": self.status_code, "message": self.message, "kind": self.kind,
                "retry_after": self.retry_after}

    @classmethod
    def from_dict(cls, data: dict | None) -> "GenerationError":
        data = data or {}
        return cls(int(data.get("status", 502)), str(data.get("message", "generation failed")),
                   str(data.get("kind", "failed")), data.get("retry_after"))

    @classmethod
    def from_llm(cls, exc: LLMError) -> "GenerationError":
        # The details (LLM_BASE_URL, the upstream's words) go to the log only.
        log.warning("LLM call failed (%s): %s", exc.kind, exc)
        retry_after = getattr(exc, "retry_after", None)
        return cls(exc.status_code, exc.public_message, exc.kind,
                   retry_after=max(1, round(retry_after)) if retry_after else None)


class InvalidRequest(GenerationError):
    """Bad input from the user: answered 400 with this message."""

    def __init__(self, message: str):
        super().__init__(400, message, "invalid")
