"""Writing and reading posts: the one path for the views, the API and
``aiblog seed``. Every write invalidates the pages it changed before it
returns, so the writer's next page view is fresh. Needs an app context, not a
request."""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from markupsafe import escape
from sqlalchemy import func, insert, select, tuple_

from ..monitoring import metrics
from ..extensions import db
from ..markup import MarkupRejected, render_markdown
from ..models import BODY_MAX, Post, User, clean_title, utcnow
from ..page_cache.backends import LISTS, post_scope
from ..page_cache.read_through import cached, invalidate


class PostValidationError(ValueError):
    pass


def validate(title: object, body: object) -> tuple[str, str]:
    # Lengths are checked before stripping, as the web form and the OpenAPI
    # document count them.
    if not isinstance(title, str) or not isinstance(body, str):
        raise PostValidationError("title and body must be strings")
    try:
        title = clean_title(title)
    except ValueError as exc:
        raise PostValidationError(str(exc)) from None
    if len(body) > BODY_MAX:
        raise PostValidationError(f"body must be at most {BODY_MAX} characters")
    if "\x00" in body:
        raise PostValidationError("body must not contain NUL characters")
    if not body.strip():
        raise PostValidationError("body must not be empty")
    return title, body


def _render(body: str) -> str:
    try:
        return render_markdown(body)
    except MarkupRejected as exc:
        raise PostValidationError(str(exc)) from None


def create_post(author: User, title: str, body: str, ai_generated: bool = False) -> Post:
    title, body = validate(title, body)
    # By id: ``author`` may be a cached identity snapshot (auth/identity.py).
    post = Post(title=title, body=body, html=_render(body), author_id=author.id, ai_generated=ai_generated)
    db.session.add(post)
    db.session.commit()
    invalidate(LISTS)
    metrics.POSTS_CREATED.inc()
    return post


def add_unrendered_posts(author: User, posts: list[tuple[str, str]], batch: int = 5000) -> int:
    """Bulk-insert ``(title, body)`` pairs whose bodies are plain text (no
    Markdown rendering, no title rule: ``aiblog seed --posts`` makes
    thousands for benchmarks); returns how many were added."""
    now = utcnow()
    rows = [{"title": title, "body": body, "html": f"<p>{escape(body)}</p>", "author_id": author.id,
             "ai_generated": False, "created_at": now, "updated_at": now} for title, body in posts]
    for start in range(0, len(rows), batch):
        db.session.execute(insert(Post), rows[start:start + batch])
    db.session.commit()
    invalidate(LISTS)
    return len(rows)


def update_post(post: Post, title: str | None = None, body: str | None = None) -> Post:
    title, body = validate(post.title if title is None else title, post.body if body is None else body)
    post.title = title
    if body != post.body:
        post.body = body
        post.html = _render(body)
    db.session.commit()
    invalidate(LISTS, post_scope(post.id))
    return post


def delete_post(post: Post) -> None:
    post_id = post.id
    db.session.delete(post)
    db.session.commit()
    invalidate(LISTS, post_scope(post_id))


class BadCursor(ValueError):
    pass


@dataclass
class PageOfPosts:
    items: list[Post]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def next_cursor(self) -> str | None:
        """Where the next page starts: the last post's place in the order."""
        if not self.has_next:
            return None
        last = self.items[-1]
        return base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode().rstrip("=")


CURSOR_MAX = 200  # characters; a next_cursor is about 50


def parse_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a ``next_cursor`` names; ``BadCursor`` for anything else."""
    if not 0 < len(cursor) <= CURSOR_MAX:
        raise BadCursor("'cursor' is not one this API gave out; use next_cursor from a list answer")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, post_id = text.partition("|")
        return datetime.fromisoformat(created_at), int(post_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("'cursor' is not one this API gave out; use next_cursor from a list answer") from None


def newest_posts(page: int, per_page: int, author_id: int | None = None,
                 after: tuple[datetime, int] | None = None) -> PageOfPosts:
    """One page of posts, newest first, with their authors in the same query:
    page number ``page``, or (keyset pagination, as cheap at any depth) the
    posts after the place ``after`` (a parsed ``next_cursor``).

    Fetches one row more than the page holds to learn whether a next page
    exists without counting the whole table.
    """
    query = select(Post).order_by(Post.created_at.desc(), Post.id.desc())
    if author_id is not None:
        query = query.where(Post.author_id == author_id)
    if after is not None:
        query = query.where(tuple_(Post.created_at, Post.id) < tuple_(*after))
    else:
        query = query.offset((page - 1) * per_page)
    rows = list(db.session.scalars(query.limit(per_page + 1)))
    return PageOfPosts(rows[:per_page], page, per_page, len(rows) > per_page)


def count_posts(author_id: int | None = None, fresh: bool = False) -> int:
    """How many posts there are (by one author), counted once per write (kept
    in the page cache; ``fresh`` as for ``read_through.cached``)."""
    query = select(func.count()).select_from(Post)
    if author_id is not None:
        query = query.where(Post.author_id == author_id)
    name = "count:posts" if author_id is None else f"count:posts:author:{author_id}"
    return int(cached(LISTS, name, lambda: str(db.session.scalar(query) or 0).encode(), fresh))


def beyond_last_page(page: int, per_page: int, author_id: int | None = None, fresh: bool = False) -> bool:
    """Whether page ``page`` starts after the last post (of one author), known
    from the cached count: such a page is a 404 without an offset query."""
    return page > 1 and (page - 1) * per_page >= count_posts(author_id, fresh)


def get_post(post_id: int) -> Post | None:
    return db.session.get(Post, post_id)
