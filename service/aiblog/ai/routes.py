"""AI writing's web page: the form, the streamed or whole answer, save as post.

The route validates the title and picks the mode; ``GenerationService.answer``
does the rest (cache, then the rate limit below only on a miss, single
flight, LLM); the route renders what it returns.
"""
from __future__ import annotations

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..extensions import limiter, release_db_connection
from ..posts.store import PostValidationError, create_post
from . import bp
from .answers import ai_limit, error_json, mark_free, not_cached, stream
from .generation import GenerationError, InvalidRequest, generation_service, validate_mode, validate_title


def _web_user_key() -> str:
    return f"ai-user:{current_user.get_id() or request.remote_addr}"


@limiter.limit(ai_limit, key_func=_web_user_key, deduct_when=not_cached)
def _rate_limit_a_miss() -> None:
    release_db_connection()  # a generation may wait seconds on the LLM


def _page(title: str, status: int = 200, **context) -> Response:
    return Response(render_template("ai/generate.html", simulated=generation_service().simulated,
                                    title=title, **context), status)


def _wants_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@bp.route("/generate-blog", methods=["GET"])
@login_required
def generate_page():
    return _page("")


@bp.route("/generate-blog", methods=["POST"])
@login_required
def generate_web():
    try:
        title = validate_title(request.form.get("title"))
        mode = validate_mode(request.form.get("mode") or ("stream" if _wants_stream() else "sync"))
    except InvalidRequest as exc:
        if _wants_stream():
            return jsonify(error="invalid", message=str(exc), status=400), 400
        flash(str(exc), "error")
        return _page(request.form.get("title") or "", 400)
    if mode == "background":
        mode = "sync"  # the page has no job view; the API offers background mode
    try:
        answer = generation_service().answer(title, mode, on_miss=_rate_limit_a_miss)
    except GenerationError as exc:
        if mode == "stream":
            return error_json(exc)
        flash(exc.message, "error")
        response = _page(title, exc.status_code)
        if exc.retry_after:
            response.headers["Retry-After"] = str(int(exc.retry_after))
        return response
    if mode == "stream":
        return stream(title, answer)
    return mark_free(_page(title, generation=answer.generation), answer)


@bp.route("/generate-blog/save", methods=["POST"])
@login_required
def save_generated():
    if not current_user.can_write:
        abort(403, "Readers cannot write posts. Ask an admin for the author role.")
    try:
        post = create_post(current_user, request.form.get("title", ""), request.form.get("body", ""), ai_generated=True)
    except PostValidationError as exc:
        abort(400, str(exc))
    flash("The generated post is published.", "success")
    return redirect(url_for("posts.show", post_id=post.id))
