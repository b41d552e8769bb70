"""Account operations used by the web forms, the API and the CLI."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .. import metrics
from ..extensions import db
from ..models import Role, User


class AccountError(ValueError):
    pass


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def register(username: str, password: str, role: Role = Role.AUTHOR) -> User:
    username = username.strip()
    if find_user(username) is not None:
        raise AccountError("That username is already taken.")
    user = User(username=username, role=role.value)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent registration won the race
        db.session.rollback()
        raise AccountError("That username is already taken.") from None
    metrics.USER_REGISTRATIONS.inc()
    return user


def authenticate(username: str, password: str) -> User | None:
    user = find_user(username)
    if user is None:
        # Hash anyway so a missing user takes as long as a wrong password.
        User(username="", password_hash="").set_password(password)
        return None
    return user if user.check_password(password) else None
