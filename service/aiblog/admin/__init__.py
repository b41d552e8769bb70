"""Admins manage roles."""
from functools import wraps

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from ..extensions import db
from ..auth import identity
from ..models import Role, User

bp = Blueprint("admin", __name__, url_prefix="/admin")


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, "Only admins can manage users.")
        return view(*args, **kwargs)

    return wrapped


@bp.route("/users")
@admin_required
def users():
    everyone = db.session.scalars(select(User).order_by(User.created_at)).all()
    return render_template("admin/users.html", users=everyone, roles=[r.value for r in Role])


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@admin_required
def set_role(user_id: int):
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    role = request.form.get("role", "")
    if role not in {r.value for r in Role}:
        abort(400, f"Unknown role {role[:40]!r}; use reader, author or admin.")
    if user.id == current_user.id and role != Role.ADMIN.value:
        abort(400, "Admins cannot remove their own admin role; ask another admin.")
    user.role = role
    db.session.commit()
    identity.changed(user.id)
    flash(f"{user.username} is now {role}.", "success")
    return redirect(url_for("admin.users"))
