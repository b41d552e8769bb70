"""Helpers shared by the API views: JSON bodies, errors and authentication."""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, jsonify, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select
from werkzeug.exceptions import HTTPException

from ..extensions import db, read_first
from ..models import HasRole, User


class ApiError(HTTPException):
    def __init__(self, code: int, message: str):
        super().__init__(description=message)
        self.code = code


def fail(code: int, message: str):
    raise ApiError(code, message)


def json_body() -> dict:
    """The request body as a JSON object, or a 400 that says what is wrong."""
    raw = request.get_data(cache=True)
    if not raw:
        fail(400, "request body must be a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(400, "request body is not valid UTF-8")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        fail(400, f"malformed JSON: {getattr(exc, 'msg', 'too deeply nested')}")
    if not isinstance(data, dict):
        fail(400, "request body must be a JSON object")
    try:
        # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8
        # page, database or sanitizer can hold.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        fail(400, "request body contains an invalid Unicode escape (lone surrogate)")
    return data


# Built once: SQLAlchemy then reuses its compiled form on every request.
_CALLER_BY_ID = select(User.credentials_version, User.role).where(User.id == bindparam("user_id"))


def token_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="aiblog-api-token")


def issue_token(user: User) -> str:
    # The credentials version, not anything of the password: a password
    # change increments it, which revokes every token issued before.
    return token_serializer().dumps({"uid": user.id, "v": user.credentials_version})


def _token_claims(token: str) -> tuple[int, int] | None:
    """(user id, credentials version) of a validly signed, unexpired token."""
    try:
        data = token_serializer().loads(token, max_age=current_app.config["API_TOKEN_TTL"])
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("v"), int):
        return None
    return data["uid"], data["v"]


def user_from_token(token: str) -> User | None:
    claims = _token_claims(token)
    if claims is None:
        return None
    user = db.session.get(User, claims[0])
    if user is None or user.credentials_version != claims[1]:
        return None
    return user


@dataclass(frozen=True)
class Caller(HasRole):
    """Who holds a valid token, without loading a ``User``."""

    id: int
    role: str
    is_authenticated = True


def caller_from_token(token: str) -> Caller | None:
    """The check of ``user_from_token`` reading two columns instead of loading
    a ``User``: for hot views that only need to know who asks. It reads the
    database every time (no snapshot), so a password changed by any means
    revokes the token at once."""
    claims = _token_claims(token)
    if claims is None:
        return None
    row = read_first(_CALLER_BY_ID, {"user_id": claims[0]})
    if row is None or row[0] != claims[1]:
        return None
    return Caller(claims[0], row[1])


def _bearer_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        fail(401, "send 'Authorization: Bearer <token>'; get a token from POST /api/v1/tokens")
    return token.strip()


def _invalid_token():
    fail(401, "the token is invalid or expired; get a new one from POST /api/v1/tokens")


def _bearer_auth(resolve, attribute: str):
    """A view decorator: 401 unless ``resolve(token)`` finds who asks; the
    result is kept in ``g.<attribute>``."""
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            who = resolve(_bearer_token())
            if who is None:
                _invalid_token()
            setattr(g, attribute, who)
            return view(*args, **kwargs)

        return wrapped

    return decorator


# ``g.api_user``: the ``User`` the bearer token belongs to.
token_required = _bearer_auth(user_from_token, "api_user")
# ``g.api_caller`` only: the same check, reading two columns instead of a ``User``.
token_caller_required = _bearer_auth(caller_from_token, "api_caller")


def page_arg(name: str = "page", default: int = 1, maximum: int = 100_000) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        fail(400, f"'{name}' must be an integer between 1 and {maximum}")
    return int(raw)


def created(payload: dict, location: str):
    response = jsonify(payload)
    response.status_code = 201
    response.headers["Location"] = location
    return response


__all__ = ["ApiError", "fail", "json_body", "issue_token", "token_required", "token_caller_required", "page_arg",
           "created"]
