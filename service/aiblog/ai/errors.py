"""What can go wrong with an LLM call, as exceptions a user can read.

``status_code`` is what the web layer answers with (502 bad answer or cut
stream, 503 unreachable, 504 too slow).
"""
from __future__ import annotations


class LLMError(Exception):
    """The LLM gave no usable answer. The message is safe to show to users."""

    status_code = 502
    kind = "bad_response"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, when waiting is known to help


class LLMUnavailable(LLMError):
    """Refused, unreachable, overloaded, model missing, or circuit open."""

    status_code = 503
    kind = "unavailable"


class LLMTimeout(LLMError):
    """No connection, no first token, or no complete answer in time."""

    status_code = 504
    kind = "timeout"


class LLMStreamCut(LLMError):
    """The answer stream ended before the server's end marker."""

    status_code = 502
    kind = "stream_cut"
