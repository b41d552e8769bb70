"""User stories through the real app, on SQLite and on a real Postgres."""
import re

from aiblog.extensions import db
from aiblog.models import Role, User
from sqlalchemy import select

from tests.conftest import AuthActions, csrf_token


def post_id_from(response) -> int:
    match = re.search(r"/post/(\d+)$", response.headers["Location"])
    assert match, response.headers.get("Location")
    return int(match.group(1))


def test_register_login_write_read_edit_delete(client, auth):
    assert auth.register().status_code == 302
    auth.logout()
    assert auth.login().status_code == 302

    response = auth.write("My first post", "Hello **world**")
    assert response.status_code == 302
    post_id = post_id_from(response)

    home = client.get("/").get_data(as_text=True)
    assert "My first post" in home
    page = client.get(f"/post/{post_id}").get_data(as_text=True)
    assert "<strong>world</strong>" in page
    assert "Edit" in page

    token = auth.form(f"/post/{post_id}/edit")
    response = client.post(f"/post/{post_id}/edit", data={"title": "Edited title", "body": "New body", "csrf_token": token})
    assert response.status_code == 302
    assert "Edited title" in client.get(f"/post/{post_id}").get_data(as_text=True)
    assert "Edited title" in client.get("/").get_data(as_text=True)
    assert "Edited title" in client.get("/author/alice").get_data(as_text=True)

    token = csrf_token(client.get(f"/post/{post_id}").get_data(as_text=True))
    assert client.post(f"/post/{post_id}/delete", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/post/{post_id}").status_code == 404
    assert "Edited title" not in client.get("/").get_data(as_text=True)


def test_anonymous_reader_sees_fresh_pages_after_writes(app, client, auth):
    """The page cache never serves a page older than a write."""
    anonymous = app.test_client()
    assert "No posts yet" in anonymous.get("/").get_data(as_text=True)
    auth.register()
    post_id = post_id_from(auth.write("Cache me", "v1"))
    assert "Cache me" in anonymous.get("/").get_data(as_text=True)
    assert "v1" in anonymous.get(f"/post/{post_id}").get_data(as_text=True)
    token = auth.form(f"/post/{post_id}/edit")
    client.post(f"/post/{post_id}/edit", data={"title": "Cache me", "body": "v2", "csrf_token": token})
    assert "v2" in anonymous.get(f"/post/{post_id}").get_data(as_text=True)


def test_other_user_cannot_edit_or_delete_but_admin_can(app, client, auth):
    auth.register("alice")
    post_id = post_id_from(auth.write("Alice's post", "mine"))
    auth.logout()

    auth.register("mallory")
    assert client.get(f"/post/{post_id}/edit").status_code == 403
    token = auth.form("/create")
    assert client.post(f"/post/{post_id}/edit", data={"title": "pwned", "body": "x", "csrf_token": token}).status_code == 403
    assert client.post(f"/post/{post_id}/delete", data={"csrf_token": token}).status_code == 403
    assert "Edit" not in client.get(f"/post/{post_id}").get_data(as_text=True).split("</article>")[1]
    auth.logout()

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "mallory"))
        user.role = Role.ADMIN.value
        db.session.commit()
    auth.login("mallory")
    token = auth.form(f"/post/{post_id}/edit")
    assert client.post(f"/post/{post_id}/edit", data={"title": "Moderated", "body": "ok", "csrf_token": token}).status_code == 302
    assert client.post(f"/post/{post_id}/delete", data={"csrf_token": token}).status_code == 302
    assert client.get(f"/post/{post_id}").status_code == 404


def test_admin_changes_roles_and_reader_cannot_write(app, client, auth):
    auth.register("reader1")
    auth.logout()
    with app.app_context():
        from aiblog.auth.accounts import register

        register("boss", "boss-password-123", role=Role.ADMIN)
    auth.login("boss", "boss-password-123")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "reader1" in page
    with app.app_context():
        reader_id = db.session.scalar(select(User.id).where(User.username == "reader1"))
    token = csrf_token(page)
    assert client.post(f"/admin/users/{reader_id}/role", data={"role": "reader", "csrf_token": token}).status_code == 302
    assert client.post(f"/admin/users/{reader_id}/role", data={"role": "emperor", "csrf_token": token}).status_code == 400
    auth.logout()

    auth.login("reader1")
    assert client.get("/create").status_code == 403
    assert client.get("/admin/users").status_code == 403


def test_home_page_is_newest_first_and_paginated(app, client, auth):
    auth.register()
    for i in range(12):
        auth.write(f"Post number {i}", "body")
    first = client.get("/").get_data(as_text=True)
    assert first.index("Post number 11") < first.index("Post number 10")
    assert "Post number 1<" not in first and "Older" in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Post number 1<" in second and "Post number 0<" in second
    assert client.get("/?page=3").status_code == 404
    assert client.get("/?page=abc").status_code == 200  # falls back to the first page


def test_non_latin_titles_everywhere(client, auth):
    auth.register("作者甲")
    title = "性能测试：缓存与并发 🚀 Ünïcödé"
    post_id = post_id_from(auth.write(title, "正文内容"))
    assert title in client.get("/").get_data(as_text=True)
    assert title in client.get(f"/post/{post_id}").get_data(as_text=True)
    assert title in client.get("/author/作者甲").get_data(as_text=True)
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["title"] == title


def test_a_role_change_applies_to_the_users_very_next_request(app, client, auth):
    """Logged-in users are cached per process; a demotion must not wait for it."""
    auth.register("soon-reader")
    assert client.get("/create").status_code == 200  # loads and caches the user
    admin = app.test_client()
    with app.app_context():
        from aiblog.auth.accounts import register

        register("boss2", "boss-password-123", role=Role.ADMIN)
        user_id = db.session.scalar(select(User.id).where(User.username == "soon-reader"))
    AuthActions(admin).login("boss2", "boss-password-123")
    token = csrf_token(admin.get("/admin/users").get_data(as_text=True))
    assert admin.post(f"/admin/users/{user_id}/role", data={"role": "reader", "csrf_token": token}).status_code == 302
    assert client.get("/create").status_code == 403


def test_home_page_excerpts_are_the_rendered_posts_plain_text(client, auth):
    """An excerpt is text a reader sees: no Markdown markers, no tags."""
    auth.register()
    auth.write("Markdown excerpt", "Before **after** and *this*.\n\n```\nprint(1)\n```\n\n[a link](https://example.org) & more")
    home = client.get("/").get_data(as_text=True)
    excerpt = re.search(r'<p class="excerpt">(.*?)</p>', home, re.S).group(1)
    assert excerpt == "Before after and this. print(1) a link &amp; more"
