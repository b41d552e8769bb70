"""Error answers: HTML for the site, JSON under /api/. Never a bare traceback.

``error_response`` is the one builder of an error answer: the JSON body
``{error, message, status}`` and the ``Retry-After`` header are made here and
nowhere else (the AI views call it too).
"""
from __future__ import annotations

import logging

from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import TimeoutError as DatabasePoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from .trusted_hosts import is_untrusted_host

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to log in for that.",
    403: "You are not allowed to do that.",
    404: "There is nothing here. The page may have been moved or deleted.",
    405: "That method is not allowed here.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged.",
    503: "The site is busy right now. Please try again in a moment.",
}
OVERLOAD_RETRY_AFTER_S = 5


def byte_size(count: int) -> str:
    """A byte count as people read it: 1048576 -> "1 MiB", 2048 -> "2 KiB", 1000 -> "1,000 bytes"."""
    for unit, size in (("MiB", 1024 ** 2), ("KiB", 1024)):
        if count >= size and count % size == 0:
            return f"{count // size:,} {unit}"
    return f"{count:,} bytes"


def largest_body() -> str:
    """MAX_CONTENT_LENGTH, the largest request body the app accepts, as people read it."""
    return byte_size(current_app.config["MAX_CONTENT_LENGTH"])


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(code: int, name: str, message: str, headers=None, *, retry_after: float | None = None,
                   as_json: bool | None = None) -> Response:
    """The error answer: JSON ``{error, message, status}`` for the API (or when
    ``as_json``), else the site's error page; ``Retry-After`` when waiting helps."""
    if wants_json() if as_json is None else as_json:
        response = jsonify(error=name, message=message, status=code)
    elif is_untrusted_host():  # the site's layout builds URLs, and this request can build none
        response = make_response(render_template("errors/bare.html", code=code, name=name, message=message))
    else:
        response = make_response(render_template("errors/error.html", code=code, name=name, message=message))
    response.status_code = code
    response.headers.extend(headers or {})
    return with_retry_after(response, retry_after)


def with_retry_after(response: Response, seconds: float | None) -> Response:
    """``Retry-After`` in whole seconds (at least 1), when ``seconds`` is given."""
    if seconds:
        response.headers["Retry-After"] = str(max(1, int(seconds)))
    return response


def _http_error(exc: HTTPException):
    code = exc.code or 500
    # A description given by abort(code, "...") is meant for the user.
    default = type(exc).description
    if exc.description and exc.description != default:
        message = exc.description
    elif code == 413:
        message = f"That is too large. Requests may be at most {largest_body()}."
    else:
        message = MESSAGES.get(code, exc.description)
    headers = {}
    retry_after = (getattr(exc, "retry_after", None) or 60) if code == 429 else None
    if code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if code == 401 and request.path.startswith("/api/"):
        headers["WWW-Authenticate"] = 'Bearer realm="aiblog"'
    return error_response(code, exc.name, message, headers, retry_after=retry_after)


def _csrf_error(exc: CSRFError):
    return error_response(400, "Bad Request", f"The form has expired or is missing its CSRF token ({exc.description}). Reload the page and try again.")


def _overloaded(exc: DatabasePoolTimeout):
    # Every database connection of this worker stayed busy for the pool's whole
    # timeout: overload, not a bug. A 503 with Retry-After lets clients and load
    # balancers back off; a 500 would claim a fault in the code.
    log.warning("database pool exhausted on %s %s: %s", request.method, request.path, exc)
    if "_login_user" not in g:
        # The page's menu would load the user from the database, waiting for a
        # connection again: this answer shows the menu of a visitor instead.
        g._login_user = current_app.login_manager.anonymous_user()
    return error_response(503, ServiceUnavailable().name, MESSAGES[503], retry_after=OVERLOAD_RETRY_AFTER_S)


def _unhandled(exc: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, InternalServerError().name, MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(DatabasePoolTimeout, _overloaded)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
