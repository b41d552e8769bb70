from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import login_manager
from ..models import User
from . import bp, identity
from .accounts import AccountError, authenticate_limited, change_password, register_limited
from .forms import ChangePasswordForm, LoginForm, RegisterForm


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    """The user of a session ("<id>:<credentials version>", see ``User.get_id``),
    or None once the password changed after the session began."""
    user_id, _, version = session_id.partition(":")
    if not user_id.isdigit() or len(user_id) > 18 or len(version) > 18:
        return None
    user = identity.load(int(user_id))
    # A session from before versions existed holds the bare id: valid until
    # the first password change.
    if user is None or (version or "1") != str(user.credentials_version):
        return None
    return user


login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"


@bp.route("/register", methods=["GET", "POST"])
def register_view():
    if current_user.is_authenticated:
        return redirect(url_for("posts.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = register_limited(form.username.data, form.password.data)
        except AccountError as exc:
            form.username.errors.append(str(exc))
        else:
            _start_session(user)
            flash(f"Welcome, {user.username}! Your account is ready.", "success")
            return redirect(url_for("posts.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("posts.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate_limited(form.username.data, form.password.data)
        if user is not None:
            identity.changed(user.id)  # a fresh login reads the row again everywhere
            _start_session(user)
            flash("You are logged in.", "success")
            return redirect(_safe_next(request.args.get("next")))
        # One message for unknown user and wrong password: no account probing.
        form.password.errors.append("Invalid username or password.")
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password_view():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        # The current password is checked like a login (and limited like one):
        # a borrowed session alone cannot take the account over.
        if authenticate_limited(current_user.username, form.current.data) is None:
            form.current.errors.append("That is not your current password.")
        else:
            _start_session(change_password(current_user.id, form.password.data))
            flash("Your password is changed. Every other session and API token is signed out.", "success")
            return redirect(url_for("posts.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status


def _start_session(user: User) -> None:
    """Log ``user`` in on a new session: nothing a visitor's session held
    before (a planted session, its CSRF token) carries over."""
    session.clear()
    login_user(user)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("posts.index"))


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths; never an open redirect. Browsers drop
    # tabs and newlines inside URLs and read a backslash as "/", so
    # "/<tab>/evil.example" would become "//evil.example": such characters
    # refuse the target.
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and all(ch.isprintable() and not ch.isspace() for ch in target)):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("posts.index")
