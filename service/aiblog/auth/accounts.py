"""Account operations used by the web forms, the API and the CLI."""
from __future__ import annotations

import re

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import metrics, passwords
from ..extensions import db, release_db_connection
from ..models import USERNAME_MAX, Role, User


# The one rule for usernames, used by the register form and the CLI.
USERNAME_PATTERN = r"^[\w.-]+$"
USERNAME_MIN = 3
USERNAME_MESSAGE = "Use letters, digits, '.', '-' or '_' only."


class AccountError(ValueError):
    pass


def validate_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_MIN <= len(username) <= USERNAME_MAX:
        raise AccountError(f"A username has {USERNAME_MIN} to {USERNAME_MAX} characters.")
    if not re.match(USERNAME_PATTERN, username):
        raise AccountError(USERNAME_MESSAGE)
    return username


def find_user(username: str) -> User | None:
    if "\x00" in username:  # no username has one, and Postgres refuses it in a query
        return None
    return db.session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))


def register(username: str, password: str, role: Role = Role.AUTHOR) -> User:
    username = validate_username(username)
    if find_user(username) is not None:
        raise AccountError("That username is already taken.")
    release_db_connection()  # the hash below may queue for a hashing thread
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
    """The user, detached from the session, if the password is right."""
    user = find_user(username)
    # A hash may queue for a hashing thread under a burst of logins: hold no
    # pooled connection meanwhile. ``user`` stays readable, detached.
    release_db_connection()
    if user is None:
        # Hash anyway so a missing user takes as long as a wrong password.
        passwords.hash_password(password)
        return None
    if not user.check_password(password):
        return None
    if passwords.needs_rehash(user.password_hash):
        user = _upgrade_password_hash(user, password)
    return user


def _upgrade_password_hash(user: User, password: str) -> User:
    """Replace an older hash (Werkzeug scrypt, or older argon2 parameters) now
    that the password is known to be right; returns the user as now stored."""
    old_hash = user.password_hash
    new_hash = passwords.hash_password(password)
    # Only if the hash is still the one verified: a concurrent login's upgrade
    # or a password change in between wins, and this login keeps working.
    db.session.execute(update(User).where(User.id == user.id, User.password_hash == old_hash)
                       .values(password_hash=new_hash))
    db.session.commit()
    from . import identity

    identity.changed(user.id)
    # Read back, so a token issued next carries the stored hash's fingerprint.
    stored = db.session.get(User, user.id)
    release_db_connection()
    return stored or user
