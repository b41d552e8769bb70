import math

from flask import current_app, g, jsonify, url_for

from ..posts.store import PostValidationError, count_posts, create_post, delete_post, get_post, newest_posts, update_post
from . import bp
from .common import created, fail, json_body, page_arg, token_required

POST_FIELDS = {"title", "body"}


@bp.route("/posts", methods=["GET"])
def list_posts():
    page = page_arg()
    per_page = page_arg("per_page", current_app.config["POSTS_PER_PAGE"], maximum=100)
    total = count_posts()
    posts = newest_posts(page, per_page)
    return jsonify(items=[p.to_dict() for p in posts.items], page=page, per_page=per_page,
                   pages=max(1, math.ceil(total / per_page)), total=total)


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
