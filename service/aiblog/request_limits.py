"""The views' one call to the rate limits: count an attempt against limits
named by their settings (``AI_RATE_LIMIT``, ``LOGIN_RATE_LIMIT``...), with
this app's limiter (``rate_limits.RateLimiter``)."""
from __future__ import annotations

from flask import current_app

from .rate_limits import Ticket
from .services import services


def take(what: str, *limits: tuple[str, str, str]) -> Ticket:
    """Count an attempt against each ``(name, key, setting)``: the limit named
    ``name`` for ``key``, as the app's setting ``setting`` says."""
    return services().limits.take_configured(current_app.config, what, *limits)
