"""Liveness and readiness probes."""
from flask import Blueprint, jsonify
from sqlalchemy import text

from ..extensions import db
from ..services import services

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    # Liveness: the process answers. No dependencies, or a database outage
    # would make Kubernetes restart healthy pods.
    return jsonify(status="ok")


@bp.route("/readyz")
def readyz():
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(check["ok"] for check in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


def _check_database() -> dict:
    try:
        db.session.execute(text("SELECT 1"))
        return {"ok": True}
    except Exception as exc:  # any driver error means not ready
        db.session.rollback()
        return {"ok": False, "error": type(exc).__name__}
    finally:
        db.session.remove()


def _check_redis() -> dict:
    store = services().redis
    if not store.enabled:
        return {"ok": True, "detail": "not configured (in-process cache)"}
    return {"ok": True} if store.ping() else {"ok": False, "error": "unreachable"}
