"""AI writing's web page: the form, the streamed or whole answer, save as post.

The route validates the title and picks the mode; ``GenerationService.answer``
does the rest (cache, then the rate limit only on a miss through
``answers.MissCharge``, single flight, LLM); the route renders what it returns.
"""
from __future__ import annotations

from flask import Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..posts.store import PostValidationError, create_post
from . import bp
from .answers import MissCharge, error_json, mark_free, stream
from .generation import GenerationError, InvalidRequest, generation_service, validate_mode, validate_title

READERS_CANNOT_WRITE = "Readers cannot write posts. Ask an admin for the author role."


def _writers_only() -> None:
    # AI writing writes posts: a reader (or a throwaway account, with
    # SIGNUP_ROLE=reader) gets no LLM quota.
    if not current_user.can_write:
        abort(403, READERS_CANNOT_WRITE)


def _page(title: str, status: int = 200, **context) -> Response:
    return Response(render_template("ai/generate.html", simulated=generation_service().simulated,
                                    title=title, **context), status)


def _wants_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


@bp.route("/generate-blog", methods=["GET"])
@login_required
def generate_page():
    _writers_only()
    return _page("")


@bp.route("/generate-blog", methods=["POST"])
@login_required
def generate_web():
    _writers_only()
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
        answer = MissCharge(current_user.id).answer(title, mode)
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
    _writers_only()
    try:
        post = create_post(current_user, request.form.get("title", ""), request.form.get("body", ""), ai_generated=True)
    except PostValidationError as exc:
        abort(400, str(exc))
    flash("The generated post is published.", "success")
    return redirect(url_for("posts.show", post_id=post.id))
