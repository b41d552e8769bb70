"""/api/v1/generate and /api/v1/jobs: AI writing for token holders.

As on the web page: ``GenerationService.answer`` answers (the title rule,
the rate limit only on a cache miss), the view renders with
``ai.responses``; background mode goes to the job queue instead.
"""
from __future__ import annotations

from flask import g, jsonify, url_for

from ..ai import jobs
from ..ai.generation import generation_service, validate_title
from ..ai.generation_errors import GenerationError, InvalidRequest
from ..ai.responses import error_json, mark_free, stream
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
    mode = data.get("mode")
    try:
        if mode == "background":  # a background job always goes to the queue
            return _enqueue(validate_title(data.get("title")))
        answer = generation_service().answer(data.get("title"), mode, user_id=g.api_caller.id)
    except InvalidRequest as exc:
        fail(400, exc.message)  # as every other API view answers bad input
    except GenerationError as exc:
        return error_json(exc)
    if mode == "stream":
        return stream(answer)
    return mark_free(jsonify(answer.generation.to_dict()), answer)


def _enqueue(title: str):
    ticket = generation_service().charge(g.api_caller.id)
    try:
        job_id = jobs.enqueue(title, g.api_caller.id, ticket.receipt())
    except jobs.QueueFull as exc:
        ticket.refund()
        return error_json(exc)
    except (RuntimeError, *REDIS_ERRORS) as exc:
        ticket.refund()
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
