"""Console commands: ``aiblog serve|migrate|seed|create-admin|set-password|settings``
(all but ``serve`` also as ``flask --app aiblog ...``)."""
from __future__ import annotations

import getpass
import os
import random
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from .models import Role


def register_commands(app: Flask) -> None:
    for command in (migrate_command, seed_command, create_admin_command, set_password_command, settings_command):
        app.cli.add_command(command)


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply database migrations (Alembic)."""
    from flask_migrate import upgrade

    upgrade()
    click.echo("database is up to date")


DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"

DEMO_POSTS = [
    ("Welcome to aiblog", "This blog is **fast**, observable and writes with a local LLM.\n\n"
     "- Pages are cached in Redis and invalidated on every write.\n"
     "- `/metrics` on its own port feeds Prometheus and Grafana.\n"
     "- The *AI writer* drafts a post from a title."),
    ("Caching rendered pages without stale reads", "Every cached page belongs to a scope with a version number.\n\n"
     "A write bumps the version **after** its commit, so the next read misses and renders fresh."),
    ("为什么要测量一切", "没有测量就没有优化。这篇文章介绍本博客的性能测试套件：Locust、缓存测试和并发测试。"),
    ("Running a small LLM on a laptop", "Gemma 3 270M answers at about 95 tokens per second on two CPU cores.\n\n"
     "```\nmake run LLM=local\n```"),
    ("Single flight: one LLM call for a thousand readers", "Identical generation requests share one lock in Redis; "
     "the first caller generates, the others wait for its result."),
]


@click.command("seed")
@click.option("--posts", "extra", default=0, help="Extra generated posts to add (for benchmarks).")
@click.option("--if-empty/--always", default=True, help="Only seed an empty database.")
@click.option("--force", is_flag=True, help="Seed even when BLOG_ENV=production.")
@with_appcontext
def seed_command(extra: int, if_empty: bool, force: bool):
    """Create the demo author and demo posts."""
    from flask import current_app

    if current_app.config["BLOG_ENV"] == "production" and not force:
        # The demo password is public: in production it is anyone's account.
        raise click.ClickException(
            f"refusing to seed with BLOG_ENV=production: it would create the account "
            f"{DEMO_USER} / {DEMO_PASSWORD}, whose password is public. Pass --force to seed anyway "
            "(a throwaway load-test stack, for example).")

    from .auth.accounts import find_user, register
    from .posts.store import add_unrendered_posts, count_posts, create_post

    empty = count_posts() == 0
    user = find_user(DEMO_USER) or register(DEMO_USER, DEMO_PASSWORD)
    if empty or not if_empty:
        for title, body in DEMO_POSTS:
            create_post(user, title, body)
    if extra:
        add_unrendered_posts(user, _benchmark_posts(extra))
    click.echo(f"{count_posts()} posts; demo author login: {DEMO_USER} / {DEMO_PASSWORD}")


def _benchmark_posts(count: int) -> list[tuple[str, str]]:
    """``count`` posts of random words, the same ones on every run."""
    rng = random.Random(42)
    words = "cache latency redis gunicorn flask metrics grafana kubernetes helm locust llm token stream".split()
    posts = []
    for i in range(count):
        body = " ".join(rng.choice(words) for _ in range(80))
        posts.append((f"Benchmark post {i + 1}: {rng.choice(words)} {rng.choice(words)}", body))
    return posts


@click.command("create-admin")
@click.argument("username")
@click.option("--password", envvar="ADMIN_PASSWORD", help="Password (or ADMIN_PASSWORD; asked if missing).")
@with_appcontext
def create_admin_command(username: str, password: str | None):
    """Create an admin, or make an existing user an admin."""
    from .auth.accounts import AccountError, find_user, register
    from .extensions import db

    user = find_user(username)
    if user is not None:
        user.role = Role.ADMIN.value
        db.session.commit()
        from .auth import identity

        identity.changed(user.id)
        click.echo(f"{user.username} is now an admin")
        return
    password = _new_password(password, "give --password or ADMIN_PASSWORD when not on a terminal")
    try:
        register(username, password, role=Role.ADMIN)
    except AccountError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"admin {username} created")


def _new_password(password: str | None, missing: str) -> str:
    if not password:
        if not sys.stdin.isatty():
            raise click.UsageError(missing)
        password = getpass.getpass("Password: ")
    if len(password) < 8:
        raise click.UsageError("the password must have at least 8 characters")
    return password


@click.command("set-password")
@click.argument("username")
@click.option("--password", help="The new password (asked if missing).")
@with_appcontext
def set_password_command(username: str, password: str | None):
    """Set a user's password; signs out their sessions and revokes their API tokens."""
    from .auth.accounts import change_password, find_user

    user = find_user(username)
    if user is None:
        raise click.UsageError(f"no user {username!r}")
    change_password(user.id, _new_password(password, "give --password when not on a terminal"))
    click.echo(f"password of {user.username} changed; their sessions and API tokens are signed out")


@click.command("settings")
@click.option("--markdown", is_flag=True, help="Print the README's configuration table.")
def settings_command(markdown: bool):
    """Show every configuration variable."""
    from . import config

    if markdown:
        click.echo(config.markdown_table())
        return
    values = config.load()
    for setting in config.SETTINGS:
        click.echo(f"{setting.env}={config.shown(setting, values[setting.env])}")


GUNICORN_CONFIG = "python:aiblog.gunicorn_conf"  # ships inside the package


@click.command("serve", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve_command(gunicorn_args: tuple[str, ...]):
    """Serve the blog: gunicorn with aiblog's config (further arguments go to gunicorn).

    gunicorn replaces this process, so in a container it is PID 1: it gets the
    stop signal itself and reaps every child."""
    from . import config

    config.load()  # a bad setting: one clear line here, not a gunicorn traceback
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG,
                              *gunicorn_args, "aiblog:create_app()"])


def main() -> None:
    """The ``aiblog`` console script: Flask's CLI bound to our factory."""
    from . import create_app
    from .config import ConfigError

    os.environ.setdefault("FLASK_APP", "aiblog")
    try:
        group = FlaskGroup(create_app=lambda: create_app(), add_default_commands=True)
        group.add_command(serve_command)  # on the group itself: found without building the app
        group(prog_name="aiblog")
    except ConfigError as exc:  # a message to act on, not a traceback
        click.echo(f"aiblog: configuration error: {exc}", err=True)
        sys.exit(2)
