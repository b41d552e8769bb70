"""Writing and reading posts. Every write invalidates the pages it changed
before it returns, so the writer's next page view is fresh."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from .. import metrics
from ..extensions import db
from ..markup import MarkupRejected, render_markdown
from ..models import BODY_MAX, Post, User, clean_title
from ..page_cache import LISTS, post_scope
from ..pages import invalidate


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


@dataclass
class PageOfPosts:
    items: list[Post]
    page: int
    per_page: int
    has_next: bool

    @property
    def has_prev(self) -> bool:
        return self.page > 1


def newest_posts(page: int, per_page: int, author_id: int | None = None) -> PageOfPosts:
    """One page of posts, newest first, with their authors in the same query.

    Fetches one row more than the page holds to learn whether a next page
    exists without counting the whole table.
    """
    query = select(Post).order_by(Post.created_at.desc(), Post.id.desc())
    if author_id is not None:
        query = query.where(Post.author_id == author_id)
    rows = list(db.session.scalars(query.offset((page - 1) * per_page).limit(per_page + 1)))
    return PageOfPosts(rows[:per_page], page, per_page, len(rows) > per_page)


def count_posts() -> int:
    return db.session.scalar(select(func.count()).select_from(Post)) or 0


def get_post(post_id: int) -> Post | None:
    return db.session.get(Post, post_id)
