from flask import current_app, jsonify, request
from flask_limiter.util import get_remote_address

from ..auth.accounts import authenticate
from ..extensions import limiter
from . import bp
from .common import fail, issue_token


def _limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _username_key() -> str:
    auth = request.authorization
    return "token-user:" + ((auth.username or "") if auth else "").strip().lower()[:64]


@bp.route("/tokens", methods=["POST"])
@limiter.limit(_limit, key_func=_username_key, deduct_when=lambda r: r.status_code == 401)
@limiter.limit(_limit, key_func=get_remote_address, deduct_when=lambda r: r.status_code == 401)
def create_token():
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        fail(401, "send your username and password with HTTP Basic authentication")
    user = authenticate(auth.username, auth.password)
    if user is None:
        fail(401, "invalid username or password")
    return jsonify(token=issue_token(user), expires_in=current_app.config["API_TOKEN_TTL"], username=user.username)
