from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..models import User
from ..page_cache.backends import LISTS, home_page, post_page
from ..page_cache.serving import Fragment, reader_wrote_recently, serve_page
from . import bp
from .forms import DeleteForm, PostForm
from .store import (
    PostValidationError, beyond_last_page, create_post, delete_post, get_post, newest_posts, update_post,
)


def _page_number() -> int:
    page = request.args.get("page", 1, type=int)
    if page is None or page < 1 or page > 100_000:
        abort(404)
    return page


@bp.route("/")
def index():
    page = _page_number()

    def build() -> Fragment:
        per_page = current_app.config["POSTS_PER_PAGE"]
        if beyond_last_page(page, per_page, fresh=reader_wrote_recently()):
            abort(404)
        posts = newest_posts(page, per_page)
        if page > 1 and not posts.items:
            abort(404)
        html = render_template("posts/_list.html", posts=posts, heading="Latest posts", endpoint="posts.index", endpoint_args={})
        return Fragment("Home" if page == 1 else f"Home – page {page}", html)

    return serve_page(*home_page(page), build)


@bp.route("/author/<username>")
def author(username: str):
    page = _page_number()

    def build() -> Fragment:
        # No username holds a NUL, and Postgres refuses one in a query.
        user = None if "\x00" in username else db.session.scalar(select(User).where(User.username == username))
        if user is None:
            abort(404)
        per_page = current_app.config["POSTS_PER_PAGE"]
        if beyond_last_page(page, per_page, author_id=user.id, fresh=reader_wrote_recently()):
            abort(404)
        posts = newest_posts(page, per_page, author_id=user.id)
        if page > 1 and not posts.items:
            abort(404)
        html = render_template("posts/_list.html", posts=posts, heading=f"Posts by {user.username}",
                               endpoint="posts.author", endpoint_args={"username": user.username}, author=user)
        return Fragment(f"Posts by {user.username}", html)

    return serve_page(LISTS, f"author:{username}:{page}", build)


@bp.route("/post/<int:post_id>")
def show(post_id: int):
    def build() -> Fragment:
        post = get_post(post_id)
        if post is None:
            abort(404)
        return Fragment(post.title, render_template("posts/_post.html", post=post), owner_id=post.author_id)

    return serve_page(*post_page(post_id), build,
                      post_id=post_id, delete_form=DeleteForm() if current_user.is_authenticated else None)


@bp.route("/create", methods=["GET", "POST"])
@login_required
def create():
    if not current_user.can_write:
        abort(403, "Readers cannot write posts. Ask an admin for the author role.")
    return _post_form(PostForm(), lambda form: create_post(current_user, form.title.data, form.body.data),
                      "Your post is published.", heading="Write a post")


def _post_form(form: PostForm, save, saved: str, **page):
    """The write and edit pages: show the form, or save it and go to the post.
    A refused title or body is shown on the form (400), never lost."""
    if form.validate_on_submit():
        try:
            post = save(form)
        except PostValidationError as exc:
            form.title.errors.append(str(exc))
        else:
            flash(saved, "success")
            return redirect(url_for("posts.show", post_id=post.id))
    status = 400 if request.method == "POST" else 200
    return render_template("posts/edit.html", form=form, **page), status


def _editable_post(post_id: int):
    post = get_post(post_id)
    if post is None:
        abort(404)
    if not current_user.can_edit(post):
        abort(403, "Only the author or an admin may change this post.")
    return post


@bp.route("/post/<int:post_id>/edit", methods=["GET", "POST"])
@login_required
def edit(post_id: int):
    post = _editable_post(post_id)
    return _post_form(PostForm(obj=post), lambda form: update_post(post, form.title.data, form.body.data),
                      "Your changes are saved.", heading="Edit post", post=post)


@bp.route("/post/<int:post_id>/delete", methods=["POST"])
@login_required
def delete(post_id: int):
    post = _editable_post(post_id)
    if not DeleteForm().validate_on_submit():
        abort(400)
    delete_post(post)
    flash("The post was deleted.", "info")
    return redirect(url_for("posts.index"))
