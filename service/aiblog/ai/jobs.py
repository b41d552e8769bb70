"""Background generation on RQ: the web process enqueues, ``blog-worker`` runs.

A running job keeps a short-lived "alive" key fresh. If the worker dies
(even by SIGKILL, which RQ itself only notices much later), the key expires
within seconds and the job is reported — and recorded — as failed, so it is
never lost silently.

The queue is capped per user (``AI_QUEUE_MAX_PER_USER``) and in all
(``AI_QUEUE_MAX``): a job holds a place in two Redis sorted sets from
enqueue until it ends (or until its deadline, should a worker die without
saying so), and a place is taken atomically before the job is queued.
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from flask import Flask, current_app
from redis import Redis
from rq import Queue, SimpleWorker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from .generation import generation_service
from .generation_errors import GenerationError


log = logging.getLogger(__name__)

QUEUE_NAME = "generate"
QUEUED_TTL = 3600  # seconds a job may wait in the queue
ALIVE_TTL_MS = 3000
ALIVE_EVERY = 1.0
STATUS_NAMES = {
    JobStatus.QUEUED: "queued", JobStatus.DEFERRED: "queued", JobStatus.SCHEDULED: "queued",
    JobStatus.CREATED: "queued", JobStatus.STARTED: "running", JobStatus.FINISHED: "done",
}
WORKER_DIED = "the worker stopped while running this job; submit it again"


QUEUE_RETRY_AFTER = 10  # seconds: a background generation takes a few
PLACES_ALL = "aiblog:ai:job-places"


def _alive_key(job_id: str) -> str:
    return f"aiblog:ai:job-alive:{job_id}"


def _places_of(user_id: int) -> str:
    return f"aiblog:ai:job-places:user:{user_id}"


class QueueFull(GenerationError):
    """The user's or the whole queue's cap is reached: answered 429 with Retry-After."""

    def __init__(self, message: str):
        super().__init__(429, message, "queue_full", retry_after=QUEUE_RETRY_AFTER)


# KEYS: the user's places, everyone's. ARGV: job id, deadline (ms), per-user
# cap, total cap. Drops places past their deadline, then takes one in both
# sets, or returns which cap is reached (1: the user's, 2: the total).
_TAKE_PLACE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 2 end
local deadline = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], deadline, ARGV[1])
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""


def _take_place(client: Redis, job_id: str, user_id: int, lifetime_s: int) -> None:
    config = current_app.config
    per_user, total = config["AI_QUEUE_MAX_PER_USER"], config["AI_QUEUE_MAX"]
    full = client.eval(_TAKE_PLACE, 2, _places_of(user_id), PLACES_ALL, job_id, lifetime_s * 1000, per_user, total)
    if full == 1:
        raise QueueFull(f"you already have {per_user} background generations queued or running; "
                        "wait for one to finish")
    if full == 2:
        raise QueueFull(f"the background queue is full ({total} generations queued or running); retry shortly")


def _free_place(client: Redis, job_id: str, user_id: Any) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.zrem(PLACES_ALL, job_id)
    if isinstance(user_id, int):
        pipe.zrem(_places_of(user_id), job_id)
    pipe.execute()


def queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection)


def enqueue(title: str, user_id: int, rate_receipt: dict | None = None) -> str:
    """Queue a background generation; ``rate_receipt`` lets the worker give the
    AI rate limit's attempt back if the answer turns out to be free."""
    client = current_app.extensions["aiblog"].redis.client
    if client is None:
        raise RuntimeError("background generation needs Redis (set REDIS_URL)")
    total = int(current_app.config["LLM_TOTAL_TIMEOUT"] + current_app.config["AI_SINGLE_FLIGHT_WAIT"] + 30)
    job_id = uuid.uuid4().hex
    _take_place(client, job_id, user_id, lifetime_s=QUEUED_TTL + total)
    try:
        queue(client).enqueue(
            run_generation, title, job_id=job_id, job_timeout=total, result_ttl=3600, failure_ttl=3600,
            ttl=QUEUED_TTL, meta={"user_id": user_id, "title": title, "rate_receipt": rate_receipt},
        )
    except BaseException:
        _free_place(client, job_id, user_id)
        raise
    return job_id


def job_status(job_id: str, user_id: int, is_admin: bool) -> dict[str, Any] | None:
    """The job as the API shows it, or None when it does not exist for this user."""
    client = current_app.extensions["aiblog"].redis.client
    if client is None or len(job_id) > 64:
        return None
    try:
        job = Job.fetch(job_id, connection=client)
    except NoSuchJobError:
        return None
    meta = job.get_meta(refresh=False)
    if meta.get("user_id") != user_id and not is_admin:
        return None  # other users' jobs do not exist for you
    status = job.get_status(refresh=False)
    body: dict[str, Any] = {"id": job.id, "title": meta.get("title")}
    if (status == JobStatus.STARTED and not client.exists(_alive_key(job.id)) and meta.get("alive_seen")
            and job.get_status(refresh=True) == JobStatus.STARTED):  # not finished since the fetch
        _record_worker_death(job, client)
        _free_place(client, job.id, meta.get("user_id"))
        status = JobStatus.FAILED
        meta = job.get_meta(refresh=True)
    if status == JobStatus.FINISHED:
        body.update(status="done", result=job.return_value())
    elif status in STATUS_NAMES:
        body["status"] = STATUS_NAMES[status]
    else:
        body.update(status="failed", error=meta.get("error") or _last_error(job) or f"job {status.value}")
    return body


def _last_error(job: Job) -> str | None:
    result = job.latest_result()
    if result is not None and result.exc_string:
        return result.exc_string.strip().splitlines()[-1][:300]
    return None


def _record_worker_death(job: Job, client: Redis) -> None:
    job.meta["error"] = WORKER_DIED
    job.save_meta()
    registry = StartedJobRegistry(QUEUE_NAME, connection=client)
    try:
        registry.cleanup()  # RQ's own bookkeeping: moves abandoned jobs to failed
    except Exception:  # noqa: BLE001 - bookkeeping only; the status below is what counts
        log.exception("could not clean the started-job registry")
    if job.get_status(refresh=True) != JobStatus.FAILED:
        job.set_status(JobStatus.FAILED)


# -- in the worker process ---------------------------------------------------
_worker_app: Flask | None = None


def run_generation(title: str) -> dict[str, Any]:
    """The job body. Runs inside ``blog-worker``."""
    from rq import get_current_job

    job = get_current_job()
    app = _worker_app
    if app is None:  # run in a plain RQ worker: make the app here
        from .. import create_app

        app = create_app()
    stop = threading.Event()
    client = app.extensions["aiblog"].redis.client
    job.meta["alive_seen"] = True
    job.save_meta()
    client.set(_alive_key(job.id), "1", px=ALIVE_TTL_MS)
    beat = threading.Thread(target=_keep_alive, args=(client, job.id, stop), daemon=True)
    beat.start()
    try:
        with app.app_context():
            try:
                answer = generation_service().answer(title, "background", wait_for_slot=True)
                receipt = job.meta.get("rate_receipt")
                if answer.free and receipt:  # cached or shared meanwhile: no LLM work, no quota
                    app.extensions["aiblog"].limits.refund_receipt(receipt)
                return answer.generation.to_dict()
            except GenerationError as exc:
                job.meta["error"] = exc.message
                job.save_meta()
                raise
    finally:
        # The alive key is left to expire (within ALIVE_TTL_MS), not deleted: RQ
        # records the job's end only after this returns, and a poll in between
        # would take a finished job for one whose worker died.
        stop.set()
        _free_place(client, job.id, job.meta.get("user_id"))


def _keep_alive(client: Redis, job_id: str, stop: threading.Event) -> None:
    while not stop.wait(ALIVE_EVERY):
        try:
            client.set(_alive_key(job_id), "1", px=ALIVE_TTL_MS)
        except Exception:  # noqa: BLE001 - a missed beat only risks a false "failed"
            log.warning("could not refresh job liveness for %s", job_id)


def main() -> None:
    """``blog-worker``: run background generations from the ``generate`` queue."""
    global _worker_app
    from .. import create_app

    _worker_app = create_app()
    logging.basicConfig(level=_worker_app.config["LOG_LEVEL"].upper())
    client = _worker_app.extensions["aiblog"].redis.client
    if client is None:
        raise SystemExit("blog-worker needs Redis: set REDIS_URL (for example redis://127.0.0.1:6379/0)")
    metrics_port = _worker_app.config["WORKER_METRICS_PORT"]
    if metrics_port:
        # The worker's own AI/LLM metrics (background mode), for Prometheus.
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=_worker_app.config["METRICS_BIND"] or _worker_app.config["BIND_HOST"])
    # SimpleWorker runs jobs in this process (no fork per job), so the
    # metrics they record reach this process's /metrics endpoint.
    worker = SimpleWorker([queue(client)], connection=client)
    worker.work(with_scheduler=False)
