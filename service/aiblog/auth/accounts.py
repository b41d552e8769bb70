"""Account operations used by the web forms, the API and the CLI."""
from __future__ import annotations

import re

from flask import current_app, request
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import passwords
from ..monitoring import metrics
from ..request_limits import take
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


def signup_role() -> Role:
    """The role a new account gets from the sign-up form (``SIGNUP_ROLE``)."""
    return Role(current_app.config["SIGNUP_ROLE"])


def register_limited(username: str, password: str) -> User:
    """``register`` from the sign-up form: counted against the address's
    sign-up limit before the password is hashed (429 ``RateLimited`` beyond
    it); an attempt that creates no account is given back."""
    ticket = take("sign-ups from your address", ("register", request.remote_addr or "?", "REGISTER_RATE_LIMIT"))
    try:
        return register(username, password, signup_role())
    except AccountError:
        ticket.refund()
        raise


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


def authenticate_limited(username: str, password: str) -> User | None:
    """``authenticate`` for a login from the network. The attempt is counted
    before the password is checked, against the (username, address) pair and
    the address (429 ``RateLimited`` when either is spent), and given back
    when the password is right: parallel guesses cannot slip past the limit,
    and nobody elsewhere can lock the owner out."""
    address = request.remote_addr or "?"
    name = username.strip().lower()[:USERNAME_MAX]
    ticket = take("failed logins",
                  ("login", f"{name}|{address}", "LOGIN_RATE_LIMIT"),
                  ("login-address", address, "LOGIN_ADDRESS_RATE_LIMIT"))
    user = authenticate(username, password)
    if user is not None:
        ticket.refund()
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
        user = upgrade_password_hash(user, password)
    return user


def change_password(user_id: int, password: str) -> User:
    """Set a new password. The credentials version goes up with it, which
    signs out every session and revokes every API token issued before."""
    release_db_connection()  # the hash may queue for a hashing thread
    new_hash = passwords.hash_password(password)
    user = db.session.get(User, user_id)
    user.set_password_hash(new_hash)
    db.session.commit()
    from . import identity

    identity.changed(user_id)
    return user


def upgrade_password_hash(user: User, password: str) -> User:
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
    stored = db.session.get(User, user.id)
    release_db_connection()
    return stored or user
