from flask import current_app, jsonify, request

from ..auth.accounts import authenticate_limited
from . import bp
from .common import fail, issue_token


@bp.route("/tokens", methods=["POST"])
def create_token():
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        fail(401, "send your username and password with HTTP Basic authentication")
    user = authenticate_limited(auth.username, auth.password)
    if user is None:
        fail(401, "invalid username or password")
    return jsonify(token=issue_token(user), expires_in=current_app.config["API_TOKEN_TTL"], username=user.username)
