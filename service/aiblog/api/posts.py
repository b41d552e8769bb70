import json
import math

from flask import Response, current_app, g, jsonify, request, url_for

from ..page_cache.backends import LISTS
from ..page_cache.read_through import cached
from ..page_cache.serving import reader_wrote_recently
from ..posts.store import (
    BadCursor, PostValidationError, count_posts, create_post, delete_post, get_post, newest_posts, parse_cursor,
    update_post,
)
from ..request_limits import take
from . import bp
from .common import created, fail, json_body, page_arg, token_required

POST_FIELDS = {"title", "body"}
INCLUDABLE = ("body", "html")  # left out of list items unless asked for


@bp.route("/posts", methods=["GET"])
def list_posts():
    """One page of posts, newest first: by page number, or after a cursor
    (keyset pagination, equally cheap at any depth). Anonymous and cheap to
    ask for, so: limited per address, and the answer and the total are kept
    in the page cache until the next write."""
    take("post list requests from your address", ("api-list", request.remote_addr or "?", "API_LIST_RATE_LIMIT"))
    per_page = page_arg("per_page", current_app.config["POSTS_PER_PAGE"], maximum=100)
    cursor = request.args.get("cursor")
    if cursor is not None and "page" in request.args:
        fail(400, "give 'page' or 'cursor', not both")
    try:
        after = parse_cursor(cursor) if cursor is not None else None
    except BadCursor as exc:
        fail(400, str(exc))
    page = None if cursor is not None else page_arg()
    include = _include()
    name = f"api:posts:{per_page}:{','.join(sorted(include))}:{page or ''}:{cursor or ''}"
    fresh = reader_wrote_recently()
    body = cached(LISTS, name, lambda: json.dumps(_list(page, per_page, after, include, fresh)).encode(), fresh)
    return Response(body, mimetype="application/json")


def _list(page: int | None, per_page: int, after: tuple | None, include: frozenset[str], fresh: bool) -> dict:
    total = count_posts(fresh=fresh)
    pages = max(1, math.ceil(total / per_page))
    if page is not None and page > pages:  # past the end: no query
        return {"items": [], "page": page, "per_page": per_page, "pages": pages, "total": total, "next_cursor": None}
    posts = newest_posts(page or 1, per_page, after=after)
    return {"items": [p.to_summary(include) for p in posts.items], "page": page, "per_page": per_page,
            "pages": pages, "total": total, "next_cursor": posts.next_cursor}


def _include() -> frozenset[str]:
    raw = request.args.get("include", "")
    asked = raw.split(",") if raw else []
    if len(asked) > len(INCLUDABLE) or not set(asked) <= set(INCLUDABLE):
        fail(400, f"'include' takes {' and/or '.join(INCLUDABLE)}, comma-separated; got {raw[:80]!r}")
    return frozenset(asked)


@bp.route("/posts/<int:post_id>", methods=["GET"])
def get_one(post_id: int):
    return jsonify(_post_or_404(post_id).to_dict())


@bp.route("/posts", methods=["POST"])
@token_required
def create():
    if not g.api_user.can_write:
        fail(403, "readers cannot write posts")
    data = json_body()
    _check_fields(data)
    try:
        post = create_post(g.api_user, data.get("title"), data.get("body"))
    except PostValidationError as exc:
        fail(400, str(exc))
    return created(post.to_dict(), url_for("api.get_one", post_id=post.id))


@bp.route("/posts/<int:post_id>", methods=["PATCH"])
@token_required
def patch(post_id: int):
    post = _editable(post_id)
    data = json_body()
    _check_fields(data)
    if not data:
        fail(400, "send at least one of: title, body")
    try:
        update_post(post, data.get("title"), data.get("body"))
    except PostValidationError as exc:
        fail(400, str(exc))
    return jsonify(post.to_dict())


@bp.route("/posts/<int:post_id>", methods=["DELETE"])
@token_required
def delete(post_id: int):
    delete_post(_editable(post_id))
    return "", 204


def _post_or_404(post_id: int):
    post = get_post(post_id)
    if post is None:
        fail(404, f"post {post_id} does not exist")
    return post


def _editable(post_id: int):
    post = _post_or_404(post_id)
    if not g.api_user.can_edit(post):
        fail(403, "only the author or an admin may change this post")
    return post


def _check_fields(data: dict) -> None:
    unknown = set(data) - POST_FIELDS
    if unknown:
        fail(400, f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    for name, value in data.items():
        if not isinstance(value, str):
            fail(400, f"'{name}' must be a string")
