"""aiblog: a fast, observable Flask blog with AI writing."""
from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

__version__ = "0.1.0"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Application factory.

    ``config`` overrides values read from the environment (tests use it).
    """
    from . import config as settings
    from . import trusted_hosts
    from .client_address import TrustedProxies
    from .extensions import csrf, db, login_manager, migrate
    from .services import Services

    app = Flask(__name__, instance_relative_config=False)
    values = settings.load(overrides=config)
    app.config.update(values)
    app.config.update(
        SECRET_KEY=values["SECRET_KEY"],
        SQLALCHEMY_DATABASE_URI=sqlalchemy_url(values["DATABASE_URL"]),
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(values),
        MAX_CONTENT_LENGTH=values["MAX_CONTENT_LENGTH"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=values["BLOG_ENV"] == "production" and values["SESSION_COOKIE_SECURE"],
        WTF_CSRF_TIME_LIMIT=values["CSRF_TIME_LIMIT"],
        JSON_SORT_KEYS=False,
    )

    # Before any blueprint adds its routes: every <int:...> in them is an id.
    app.url_map.converters["int"] = DatabaseIdConverter
    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    app.wsgi_app = TrustedProxies(app.wsgi_app, values["TRUSTED_PROXY_HOPS"], values["FORWARDED_ALLOW_IPS"])
    trusted_hosts.init_app(app)
    Services.init_app(app)

    _add_features(app)
    return app


def _add_features(app: Flask) -> None:
    """The blueprints, then what wraps every request: the AI service, the
    page cache's writer cookie, security headers, error answers, metrics; and
    in front of all of it, the fast path for cached anonymous pages."""
    from . import errors, security_headers
    from .admin import bp as admin_bp
    from .ai import bp as ai_bp
    from .ai import generation
    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .cli import register_commands
    from .health import bp as health_bp
    from .monitoring import instrumentation
    from .page_cache import fast_path, serving
    from .posts import bp as posts_bp

    for blueprint in (health_bp, auth_bp, posts_bp, admin_bp, ai_bp, api_bp):
        app.register_blueprint(blueprint)
    generation.init_app(app)
    serving.init_app(app)
    security_headers.init_app(app)
    errors.init_app(app)
    instrumentation.init_app(app)
    register_commands(app)
    fast_path.init_app(app)  # last: it needs the routes, the services and the metrics


class DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` limited to the ids a database column can hold, so that
    ``/post/99999999999999999999`` is a 404 rather than an overflow error."""

    def to_python(self, value: str) -> int:
        from werkzeug.exceptions import NotFound

        from .models import ID_MAX

        number = super().to_python(value)
        if number > ID_MAX:
            # Not ValidationError: Werkzeug answers that with 405 when a rule
            # for another method has the same path.
            raise NotFound()
        return number


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL the app uses for a DATABASE_URL: Heroku-style URLs,
    the driver named, and a relative SQLite path that works from any cwd."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        # psycopg2 explicitly: it is our dependency (psycogreen makes it
        # cooperative under gevent); SQLAlchemy 2.1 would pick psycopg 3.
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path = url[len("sqlite:///"):]
        if path and path != ":memory:":
            path = os.path.abspath(path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            url = "sqlite:///" + path
    return url


def _engine_options(values: dict[str, Any]) -> dict[str, Any]:
    if values["DATABASE_URL"].startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {
        "pool_size": values["DB_POOL_SIZE"],
        "max_overflow": values["DB_POOL_SIZE"] * 2,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
        "pool_timeout": 10,
    }
