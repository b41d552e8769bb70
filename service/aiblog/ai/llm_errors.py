"""What can go wrong with an LLM call, as exceptions with a plain message for users.

``status_code`` is what the web layer answers with (502 bad answer or cut
stream, 503 unreachable, 504 too slow).
"""
from __future__ import annotations


class LLMError(Exception):
    """The LLM gave no usable answer. The message is for the log: it may hold
    LLM_BASE_URL and the upstream's own words. Users see ``public_message``
    (the message itself only when it was written to be ``public``)."""

    status_code = 502
    kind = "bad_response"
    plain = "The AI writer gave no usable answer; please try again."

    def __init__(self, message: str, *, retry_after: float | None = None, public: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after  # seconds, when waiting is known to help
        self.public = public

    @property
    def public_message(self) -> str:
        return self.message if self.public else self.plain


class LLMUnavailable(LLMError):
    """Refused, unreachable, overloaded, model missing, or circuit open."""

    status_code = 503
    kind = "unavailable"
    plain = "The AI writer is unavailable right now; please try again later."


class LLMTimeout(LLMError):
    """No connection, no first token, or no complete answer in time."""

    status_code = 504
    kind = "timeout"
    plain = "The AI writer took too long to answer; please try again."


class LLMStreamCut(LLMError):
    """The answer stream ended before the server's end marker."""

    status_code = 502
    kind = "stream_cut"
    plain = "The AI writer's answer broke off; please try again."
