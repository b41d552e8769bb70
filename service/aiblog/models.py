"""The blog's data: users and posts. Schema changes go through Alembic."""
from __future__ import annotations

import enum
import re
import unicodedata
from datetime import datetime, timezone

from flask_login import UserMixin
from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, Boolean, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import passwords
from .extensions import db

TITLE_MAX = 200
# Control characters a title may not hold (all but tab), as the inside of a
# regex character class; the API's OpenAPI patterns are built from it too.
TITLE_FORBIDDEN_CHARS = r"\x00-\x08\x0a-\x1f\x7f-\x9f"
_TITLE_FORBIDDEN = re.compile(f"[{TITLE_FORBIDDEN_CHARS}]")
BODY_MAX = 100_000
USERNAME_MAX = 40
# Ids are INTEGER columns: 32-bit on Postgres. Larger ids in a URL are a 404
# (see ``DatabaseIdConverter``), never a database error.
ID_MAX = 2**31 - 1


def clean_title(title: str) -> str:
    """The one rule for a title, of a post and of an AI request (the prompt
    gets it as this returns it): at most TITLE_MAX characters as sent (as the
    web form and the OpenAPI document count them) and once NFC-normalised (as
    the column holds it), no control character but tab, not blank. Returns it
    NFC-normalised, each run of whitespace one space, stripped; raises
    ValueError saying what is wrong."""
    normalised = unicodedata.normalize("NFC", title)
    if max(len(title), len(normalised)) > TITLE_MAX:
        raise ValueError(f"title must be at most {TITLE_MAX} characters")
    if _TITLE_FORBIDDEN.search(title):
        raise ValueError("title must not contain control characters")
    cleaned = " ".join(normalised.split())
    if not cleaned:
        raise ValueError("title must not be empty")
    return cleaned


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Role(str, enum.Enum):
    READER = "reader"
    AUTHOR = "author"
    ADMIN = "admin"


WRITER_ROLES = frozenset({Role.AUTHOR.value, Role.ADMIN.value})


class HasRole:
    """The one rule of who may write posts and generate, for anything with a
    ``role``: a ``User``, or an API token's ``Caller``."""

    @property
    def can_write(self) -> bool:
        return self.role in WRITER_ROLES


class User(HasRole, UserMixin, db.Model):
    __tablename__ = "users"
    # Usernames are unique regardless of case, in the database itself (a migration made it).
    __table_args__ = (Index("uq_users_lower_username", func.lower(text("username")), unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False, default=Role.AUTHOR.value)
    # Carried by sessions and API tokens; a password change increments it,
    # which signs out every session and revokes every token issued before.
    credentials_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)

    posts: Mapped[list["Post"]] = relationship(back_populates="author", passive_deletes=True)

    def set_password(self, password: str) -> None:
        self.set_password_hash(passwords.hash_password(password))

    def set_password_hash(self, password_hash: str) -> None:
        """A new password (hashed already): every session and token issued before ends."""
        self.password_hash = password_hash
        if self.credentials_version is not None:  # None: a new user, 1 on INSERT
            self.credentials_version += 1

    def get_id(self) -> str:
        """What the session remembers: the id and the credentials version."""
        return f"{self.id}:{self.credentials_version}"

    def check_password(self, password: str) -> bool:
        return passwords.verify_password(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    def can_edit(self, post: "Post") -> bool:
        return self.is_admin or post.author_id == self.id


class Post(db.Model):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    # Sanitized HTML rendered once at write time, so reads never parse Markdown.
    html: Mapped[str] = mapped_column(Text, nullable=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    ai_generated: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow, onupdate=utcnow)

    author: Mapped[User] = relationship(back_populates="posts", lazy="joined")

    __table_args__ = (
        # Home page: newest first; id breaks ties between equal timestamps.
        Index("ix_posts_created_at_id", "created_at", "id"),
        # Author pages: one author's posts, newest first.
        Index("ix_posts_author_id_created_at", "author_id", "created_at"),
    )

    @property
    def excerpt(self) -> str:
        from .markup import excerpt

        return excerpt(self.html)

    def to_dict(self) -> dict:
        """The post as the API shows it: the fields of ``POST_API_FIELDS``."""
        return {name: read(self) for name, (_, read) in POST_API_FIELDS.items()}

    def to_summary(self, include: frozenset[str] = frozenset()) -> dict:
        """A list item: the excerpt instead of the body and HTML, unless
        ``include`` names them (``body``, ``html``)."""
        full = self.to_dict()
        summary = {key: value for key, value in full.items() if key not in ("body", "html") or key in include}
        summary["excerpt"] = self.excerpt
        return summary


def _iso(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite drops the zone; values are stored in UTC.
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


_TIMESTAMP = {"type": "string", "format": "date-time"}
# A post as the API shows it, in one place: each field's JSON Schema (the
# OpenAPI document, api/openapi.py, is built from it) and how it is read.
POST_API_FIELDS = {
    "id": ({"type": "integer"}, lambda post: post.id),
    "title": ({"type": "string"}, lambda post: post.title),
    "body": ({"type": "string"}, lambda post: post.body),
    "html": ({"type": "string"}, lambda post: post.html),
    "author": ({"type": "string"}, lambda post: post.author.username),
    "author_id": ({"type": "integer"}, lambda post: post.author_id),
    "ai_generated": ({"type": "boolean"}, lambda post: post.ai_generated),
    "created_at": (_TIMESTAMP, lambda post: _iso(post.created_at)),
    "updated_at": (_TIMESTAMP, lambda post: _iso(post.updated_at)),
}
