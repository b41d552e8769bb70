"""Who is logged in, without a database read on every request.

Flask-Login loads the user on each logged-in request; reading the row cost
about half of a cached page. Loaded users are kept per process as detached
snapshots keyed by the user's generation — the same machine-wide generations
and cross-replica pub/sub that invalidate cached pages — and the generation
is bumped whenever a role or password changes, so a demotion applies to the
very next request on every worker of the machine (and within the pub/sub
delay on other replicas).

A snapshot is never added to a session: code that writes uses ids
(``Post.author_id``), not the snapshot object.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached

from ..extensions import db
from ..models import User
from ..services import services

MAX_ENTRIES = 10_000
MAX_AGE = 60.0  # seconds; a bound even if an invalidation were ever missed

_lock = threading.Lock()
_snapshots: OrderedDict[int, tuple[int, float, User]] = OrderedDict()


def scope(user_id: int) -> str:
    return f"user:{user_id}"


def _generation(user_id: int) -> int:
    return services().pages.generations.get(scope(user_id))


def load(user_id: int) -> User | None:
    generation = _generation(user_id)
    now = time.monotonic()
    with _lock:
        entry = _snapshots.get(user_id)
        if entry is not None and entry[0] == generation and now - entry[1] < MAX_AGE:
            _snapshots.move_to_end(user_id)
            return entry[2]
    user = db.session.get(User, user_id)
    if user is None:
        return None
    snapshot = _snapshot(user)
    with _lock:
        _snapshots[user_id] = (generation, now, snapshot)
        _snapshots.move_to_end(user_id)
        while len(_snapshots) > MAX_ENTRIES:
            _snapshots.popitem(last=False)
    return snapshot


def changed(user_id: int) -> None:
    """Call after committing a change to the user's role or password."""
    from ..pages import invalidate

    invalidate(scope(user_id))


def _snapshot(user: User) -> User:
    columns = {attr.key: getattr(user, attr.key) for attr in inspect(User).column_attrs}
    copy = User(**columns)
    make_transient_to_detached(copy)  # never INSERTed, even if cascaded by mistake
    return copy
