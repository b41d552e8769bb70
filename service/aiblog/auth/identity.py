"""Who is logged in, without a database read on every request.

Flask-Login loads the user on each logged-in request; reading the row cost
about half of a cached page. Loaded users are kept per process as detached
snapshots keyed by the user's version — the same machine-wide version
counters and cross-replica pub/sub that invalidate cached pages — and the
version is bumped whenever a role or password changes, so a demotion applies to the
very next request on every worker of the machine (and within the pub/sub
delay on other replicas).

A snapshot is never added to a session: code that writes uses ids
(``Post.author_id``), not the snapshot object.
"""
from __future__ import annotations

from flask import current_app
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.orm import make_transient_to_detached

from ..expiring_lru import ExpiringLRU
from ..extensions import read_first
from ..models import User
from ..services import services

MAX_ENTRIES = 10_000
MAX_AGE = 60.0  # seconds; a bound even if an invalidation were ever missed

_COLUMNS = [(attr.key, attr.columns[0]) for attr in inspect(User).column_attrs]
# Built once: SQLAlchemy then reuses its compiled form on every request.
_USER_BY_ID = select(*(column for _, column in _COLUMNS)).where(User.id == bindparam("user_id"))


def _store() -> ExpiringLRU[tuple[int, User]]:
    """This app's snapshots, with the version each was taken at (tests run several apps in one process)."""
    extensions = current_app.extensions
    store = extensions.get("aiblog.users")
    if store is None:
        store = extensions.setdefault("aiblog.users", ExpiringLRU(MAX_ENTRIES, MAX_AGE))
    return store


def scope(user_id: int) -> str:
    return f"user:{user_id}"


def _version(user_id: int) -> int:
    return services().versions.get(scope(user_id))


def load(user_id: int) -> User | None:
    version = _version(user_id)
    store = _store()
    entry = store.get(user_id)
    if entry is not None and entry[0] == version:
        return entry[1]
    # Outside the request's transaction: this request holds no pooled
    # connection afterwards while it waits on anything else.
    row = read_first(_USER_BY_ID, {"user_id": user_id})
    if row is None:
        return None
    snapshot = _snapshot(dict(zip((key for key, _ in _COLUMNS), row)))
    store.set(user_id, (version, snapshot))
    return snapshot


def changed(user_id: int) -> None:
    """Call after committing a change to the user's role or password."""
    # Not ``read_through.invalidate``: no page changed, so this is no reason
    # to send the caller's next reads past the per-process page cache.
    services().pages.invalidate(scope(user_id))


def _snapshot(columns: dict) -> User:
    copy = User(**columns)
    make_transient_to_detached(copy)  # never INSERTed, even if cascaded by mistake
    return copy
