"""/api/v1/generate and /api/v1/jobs: AI writing for token holders.

As on the web page: the view validates and picks the mode,
``GenerationService.answer`` answers (the rate limit only on a cache miss),
the view renders; background mode goes to the job queue instead.
"""
from __future__ import annotations

from flask import g, jsonify, url_for

from ..ai import jobs
from ..ai.answers import MissCharge, error_json, mark_free, stream
from ..ai.generation import GenerationError, InvalidRequest, validate_mode, validate_title
from ..redis_store import REDIS_ERRORS
from . import bp
from .common import fail, json_body, token_caller_required, token_required


@bp.route("/generate", methods=["POST"])
@token_caller_required
def api_generate():
    if not g.api_caller.can_write:
        fail(403, "readers cannot use AI writing; ask an admin for the author role")
    data = json_body()
    unknown = set(data) - {"title", "mode"}
    if unknown:
        fail(400, f"unknown field(s): {', '.join(sorted(unknown)[:5])}")
    try:
        title = validate_title(data.get("title"))
        mode = validate_mode(data.get("mode"))
    except InvalidRequest as exc:
        fail(400, str(exc))
    charge = MissCharge(g.api_caller.id)
    if mode == "background":  # a background job always goes to the queue
        return _enqueue(title, charge)
    try:
        answer = charge.answer(title, mode)
    except GenerationError as exc:
        return error_json(exc)
    if mode == "stream":
        return stream(title, answer)
    return mark_free(jsonify(answer.generation.to_dict()), answer)


def _enqueue(title: str, charge: MissCharge):
    charge()
    try:
        job_id = jobs.enqueue(title, g.api_caller.id, charge.ticket.receipt())
    except jobs.QueueFull as exc:
        charge.ticket.refund()
        return error_json(exc)
    except (RuntimeError, *REDIS_ERRORS) as exc:
        charge.ticket.refund()
        fail(503, str(exc) if isinstance(exc, RuntimeError) else "the job queue (Redis) is unavailable")
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
