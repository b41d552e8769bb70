"""Reading a streamed answer: its lines as they arrive, each a JSON event."""
from __future__ import annotations

import json
import time
from typing import Callable, Iterator

import httpx

from ...cooperative import after_pending_requests
from ..llm_errors import LLMError

# A read that took longer than this waited on the network: the socket is
# drained, and this is when a pause lets the next tokens accumulate. (Chunks
# already buffered come back in microseconds and are never paused for.)
_BLOCKED_READ_SECONDS = 0.001


def lines(response: httpx.Response, pause: Callable[[], float]) -> Iterator[str]:
    """The lines of a streamed body as they arrive. After a read that had to
    wait for the network, sleep ``pause()`` seconds (0: not at all)."""
    pending = b""
    chunks = response.iter_bytes()
    while True:
        asked = time.monotonic()
        chunk = next(chunks, None)
        if chunk is None:
            break
        waited = time.monotonic() - asked
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:  # split before decoding: a character never straddles two lines
            yield line.rstrip(b"\r").decode("utf-8", errors="replace")
        if waited > _BLOCKED_READ_SECONDS:
            wait = pause()
            if wait > 0:
                time.sleep(wait)  # cooperative under gevent
                after_pending_requests()  # the batch is read when no page request waits
    if pending:
        yield pending.rstrip(b"\r").decode("utf-8", errors="replace")


def json_line(line: str) -> dict:
    try:
        event = json.loads(line)
    except ValueError:
        raise LLMError(f"the LLM sent a line that is not JSON: {line[:120]!r}") from None
    if not isinstance(event, dict):
        raise LLMError(f"the LLM sent an unexpected line: {line[:120]!r}")
    return event
