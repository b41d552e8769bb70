"""/api/v1/generate and /api/v1/jobs: AI writing for token holders.

As on the web page: the view validates and picks the mode,
``GenerationService.answer`` answers (the rate limit only on a cache miss),
the view renders; background mode goes to the job queue instead.
"""
from __future__ import annotations

from flask import g, jsonify, url_for

from ..ai import jobs
from ..ai.answers import ai_limit, error_json, mark_free, not_cached, stream
from ..ai.generation import GenerationError, InvalidRequest, generation_service, validate_mode, validate_title
from ..extensions import limiter, release_db_connection
from . import bp
from .common import fail, json_body, token_required, token_user_id_required


def _api_user_key() -> str:
    return f"ai-user:{g.api_user_id}"


@limiter.limit(ai_limit, key_func=_api_user_key, deduct_when=not_cached)
def _rate_limit_a_miss() -> None:
    release_db_connection()  # a generation may wait seconds on the LLM


@bp.route("/generate", methods=["POST"])
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
    if mode == "background":  # a background job always goes to the queue
        return _enqueue(title)
    try:
        answer = generation_service().answer(title, mode, on_miss=_rate_limit_a_miss)
    except GenerationError as exc:
        return error_json(exc)
    if mode == "stream":
        return stream(title, answer)
    return mark_free(jsonify(answer.generation.to_dict()), answer)


def _enqueue(title: str):
    _rate_limit_a_miss()
    try:
        job_id = jobs.enqueue(title, g.api_user_id)
    except RuntimeError as exc:
        fail(503, str(exc))
    response = jsonify(id=job_id, status="queued", url=url_for("api.api_job", job_id=job_id))
    response.status_code = 202
    response.headers["Location"] = response.json["url"]
    return response


@bp.route("/jobs/<job_id>", methods=["GET"])
@token_required
def api_job(job_id: str):
    body = jobs.job_status(job_id, g.api_user.id, g.api_user.is_admin)
    if body is None:
        fail(404, f"job {job_id[:64]} does not exist")
    return jsonify(body)
