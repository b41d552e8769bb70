"""AI writing: the web page (form, streaming, save as post) and the API.

A request first validates its input and looks in the AI cache: a hit is
answered at once, without the per-user rate limit (which protects the LLM, and
costs a Redis round trip). Only a miss goes through the limit to the generator.
"""
from __future__ import annotations

from flask import Response, abort, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..api import bp as api_bp
from ..api.common import fail, json_body, token_required, token_user_id_required
from ..extensions import limiter, release_db_connection
from ..posts.store import PostValidationError, create_post
from . import bp, jobs
from .generation import GenerationError, InvalidRequest, generator, validate_mode, validate_title
from .prompt import PROMPT_VERSION
from .sse import stream_response

CACHED_HEADER = "X-AI-Cached"


def _ai_limit() -> str:
    return current_app.config["AI_RATE_LIMIT"]


def _web_user_key() -> str:
    return f"ai-user:{current_user.get_id() or request.remote_addr}"


def _api_user_key() -> str:
    return f"ai-user:{g.api_user_id}"


def _not_cached(response: Response) -> bool:
    # Only what the LLM made for this request counts: an answer shared by an
    # identical request in progress (or cached meanwhile) is free too.
    return response.headers.get(CACHED_HEADER) != "1"


def _meta(title: str) -> dict:
    gen = generator()
    return {"title": title, "model": gen.client.model, "prompt_version": PROMPT_VERSION, "simulated": gen.simulated}


def _error_json(exc: GenerationError):
    response = jsonify(error=exc.kind, message=exc.message, status=exc.status_code)
    response.status_code = exc.status_code
    if exc.retry_after:
        response.headers["Retry-After"] = str(int(exc.retry_after))
    return response


def _generated_json(generation, status: int = 200):
    response = jsonify(generation.to_dict())
    response.status_code = status
    if generation.cached or generation.deduplicated:
        response.headers[CACHED_HEADER] = "1"
    return response


# -- web ------------------------------------------------------------------------
@bp.route("/generate-blog", methods=["GET"])
@login_required
def generate_page():
    return render_template("ai/generate.html", simulated=generator().simulated, title="")


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
        return render_template("ai/generate.html", simulated=generator().simulated, title=request.form.get("title") or ""), 400
    if mode == "background":
        mode = "sync"  # the page has no job view; the API offers background mode
    known = generator().from_cache(title, mode)
    if known is not None:
        return _known_stream(title, known) if mode == "stream" else _generated_page(title, known)
    return _generate_web_uncached(title, mode)


@limiter.limit(_ai_limit, key_func=_web_user_key, deduct_when=_not_cached)
def _generate_web_uncached(title: str, mode: str):
    release_db_connection()  # a generation may wait seconds on the LLM
    if mode == "stream":
        return _stream(title)
    try:
        generation = generator().generate_fresh(title, mode="sync")
    except GenerationError as exc:
        flash(exc.message, "error")
        response = Response(render_template("ai/generate.html", simulated=generator().simulated, title=title), exc.status_code)
        if exc.retry_after:
            response.headers["Retry-After"] = str(int(exc.retry_after))
        return response
    return _generated_page(title, generation)


def _generated_page(title: str, generation) -> Response:
    response = Response(render_template("ai/generate.html", simulated=generator().simulated, title=title, generation=generation))
    if generation.cached or generation.deduplicated:
        response.headers[CACHED_HEADER] = "1"
    return response


def _wants_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


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


def _stream(title: str):
    try:
        known, pieces = generator().open_stream(title)
    except GenerationError as exc:
        return _error_json(exc)
    if known is not None:
        return _known_stream(title, known)
    return stream_response(None, pieces, _meta(title))


def _known_stream(title: str, known) -> Response:
    response = stream_response(known, None, _meta(title))
    response.headers[CACHED_HEADER] = "1"
    return response


# -- API ------------------------------------------------------------------------
@api_bp.route("/generate", methods=["POST"])
@token_user_id_required
def api_generate():
    data = json_body()
    unknown = set(data) - {"title", "mode"}
    if unknown:
        fail(400, f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    try:
        title = validate_title(data.get("title"))
        mode = validate_mode(data.get("mode"))
    except InvalidRequest as exc:
        fail(400, str(exc))
    if mode != "background":  # a background job always goes to the queue
        known = generator().from_cache(title, mode)
        if known is not None:
            return _known_stream(title, known) if mode == "stream" else _generated_json(known)
    return _api_generate_uncached(title, mode)


@limiter.limit(_ai_limit, key_func=_api_user_key, deduct_when=_not_cached)
def _api_generate_uncached(title: str, mode: str):
    release_db_connection()  # a generation may wait seconds on the LLM
    if mode == "background":
        try:
            job_id = jobs.enqueue(title, g.api_user_id)
        except RuntimeError as exc:
            fail(503, str(exc))
        response = jsonify(id=job_id, status="queued", url=url_for("api.api_job", job_id=job_id))
        response.status_code = 202
        response.headers["Location"] = response.json["url"]
        return response
    if mode == "stream":
        return _stream(title)
    try:
        return _generated_json(generator().generate_fresh(title, mode="sync"))
    except GenerationError as exc:
        return _error_json(exc)


@api_bp.route("/jobs/<job_id>", methods=["GET"])
@token_required
def api_job(job_id: str):
    body = jobs.job_status(job_id, g.api_user.id, g.api_user.is_admin)
    if body is None:
        fail(404, f"job {job_id[:64]} does not exist")
    return jsonify(body)
