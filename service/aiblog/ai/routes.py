"""AI writing's web page: the form, the streamed or whole answer, save as post.

The view picks the mode; ``GenerationService.answer`` does the rest (the
title rule, cache, the rate limit only on a miss, single flight, LLM); the
view renders what it returns, with ``responses``.
"""
from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..errors import with_retry_after
from ..posts.store import PostValidationError, create_post
from . import bp
from .generation import generation_service
from .generation_errors import GenerationError
from .responses import error_json, mark_free, stream

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
    mode = request.form.get("mode") or ("stream" if _wants_stream() else "sync")
    if mode == "background":
        mode = "sync"  # the page has no job view; the API offers background mode
    try:
        answer = generation_service().answer(request.form.get("title"), mode, user_id=current_user.id)
    except GenerationError as exc:
        if mode == "stream" or _wants_stream():
            return error_json(exc)
        flash(exc.message, "error")
        return with_retry_after(_page(request.form.get("title") or "", exc.status_code), exc.retry_after)
    if mode == "stream":
        return stream(answer)
    return mark_free(_page(answer.title, generation=answer.generation), answer)


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
