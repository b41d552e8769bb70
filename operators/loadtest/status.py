"""What a LoadTest's status says: its conditions, and the words for an API refusal."""
from __future__ import annotations

from datetime import datetime

from kubernetes.client.exceptions import ApiException

from . import schedule


def condition(status: dict, kind: str, value: bool, reason: str, message: str, now: datetime) -> list[dict]:
    """The conditions with ``kind`` set; its transition time moves only when its value does."""
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    old = next((c for c in status.get("conditions") or [] if c.get("type") == kind), None)
    text = "True" if value else "False"
    since = old["lastTransitionTime"] if old and old.get("status") == text and old.get("lastTransitionTime") \
        else schedule.iso(now)
    conditions.append({"type": kind, "status": text, "reason": reason, "message": message,
                       "lastTransitionTime": since})
    return conditions


def api_answer(exc: ApiException) -> str:
    """What the API server said, for a status message (its body cut short)."""
    return f"the API answered {exc.status} {exc.reason}: {str(exc.body or '')[:300]}"
