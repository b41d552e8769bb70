from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_limiter.util import get_remote_address

from ..extensions import limiter, login_manager
from ..models import User
from . import bp, identity
from .accounts import AccountError, authenticate, register
from .forms import LoginForm, RegisterForm


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if not user_id.isdigit() or len(user_id) > 18:
        return None
    return identity.load(int(user_id))


login_manager.login_view = "auth.login"
login_manager.login_message_category = "info"


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _username_key() -> str:
    return "login-user:" + (request.form.get("username") or "").strip().lower()[:64]


def _failed(response) -> bool:
    # Only failed attempts count: a successful login redirects.
    return response.status_code != 302


@bp.route("/register", methods=["GET", "POST"])
def register_view():
    if current_user.is_authenticated:
        return redirect(url_for("posts.index"))
    form = RegisterForm()
    if form.validate_on_submit():
        try:
            user = register(form.username.data, form.password.data)
        except AccountError as exc:
            form.username.errors.append(str(exc))
        else:
            login_user(user)
            flash(f"Welcome, {user.username}! Your account is ready.", "success")
            return redirect(url_for("posts.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/register.html", form=form), status


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, key_func=_username_key, methods=["POST"], deduct_when=_failed)
@limiter.limit(_login_limit, key_func=get_remote_address, methods=["POST"], deduct_when=_failed)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("posts.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            identity.changed(user.id)  # a fresh login reads the row again everywhere
            login_user(user)
            flash("You are logged in.", "success")
            return redirect(_safe_next(request.args.get("next")))
        # One message for unknown user and wrong password: no account probing.
        form.password.errors.append("Invalid username or password.")
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


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
