"""The ``aiblog`` console script, run as a user would: migrate, seed,
create-admin, settings."""
from __future__ import annotations

import sqlite3
import subprocess

import pytest
from sqlalchemy import create_engine, inspect, text

from aiblog import config, sqlalchemy_url
from tests.conftest import make_app
from devstack import REPO, VENV_BIN
from tests.conftest import blog_env

DEMO_LOGIN = "demo author login: demo / demo-password"


def aiblog(*args: str, env: dict[str, str], input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "aiblog"), *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120, input=input)


@pytest.fixture
def fresh_sqlite(tmp_path) -> dict[str, str]:
    """The environment of a blog whose SQLite file does not exist yet."""
    return blog_env(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite3", REDIS_URL="")


@pytest.fixture
def migrated_sqlite(sqlite_url) -> dict[str, str]:
    """The environment of a blog with a migrated, empty SQLite database."""
    return blog_env(DATABASE_URL=sqlite_url, REDIS_URL="")


def users_and_roles(database_url: str) -> dict[str, str]:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT username, role FROM users")).all())
    engine.dispose()
    return rows


def count_posts(database_url: str) -> int:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM posts")).scalar_one()
    engine.dispose()
    return count


def test_migrate_creates_the_schema_and_can_run_again(fresh_sqlite, tmp_path):
    for _ in range(2):
        result = aiblog("migrate", env=fresh_sqlite)
        assert result.returncode == 0, result.stderr
        assert "database is up to date" in result.stdout
    with sqlite3.connect(tmp_path / "fresh.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"users", "posts", "alembic_version"} <= tables
    assert {"ix_posts_created_at_id", "ix_posts_author_id_created_at"} <= indexes


def test_migrate_on_postgres(postgres_server):
    url = postgres_server.create_database("aiblog_cli")
    result = aiblog("migrate", env=blog_env(DATABASE_URL=url, REDIS_URL=""))
    assert result.returncode == 0, result.stderr
    engine = create_engine(sqlalchemy_url(url))
    inspector = inspect(engine)
    assert {"users", "posts", "alembic_version"} <= set(inspector.get_table_names())
    assert {"ix_posts_created_at_id", "ix_posts_author_id_created_at"} <= {i["name"] for i in inspector.get_indexes("posts")}
    engine.dispose()


def test_seed_prints_the_demo_login_and_is_idempotent(migrated_sqlite):
    env = migrated_sqlite
    url = env["DATABASE_URL"]
    first = aiblog("seed", env=env)
    assert first.returncode == 0, first.stderr
    assert DEMO_LOGIN in first.stdout
    seeded = count_posts(url)
    assert seeded >= 3
    second = aiblog("seed", env=env)
    assert second.returncode == 0 and DEMO_LOGIN in second.stdout
    assert count_posts(url) == seeded and list(users_and_roles(url)) == ["demo"]

    # The printed login works, and the seeded posts are on the home page.
    app = make_app(url)
    client = app.test_client()
    assert client.post("/api/v1/tokens", auth=("demo", "demo-password")).status_code == 200
    assert "Welcome to aiblog" in client.get("/").get_data(as_text=True)

    more = aiblog("seed", "--posts", "25", env=env)
    assert more.returncode == 0 and f"{seeded + 25} posts" in more.stdout
    assert client.get("/api/v1/posts").get_json()["total"] == seeded + 25  # the cache saw the new posts


def test_create_admin_creates_promotes_and_refuses_bad_input(migrated_sqlite):
    env = migrated_sqlite
    url = env["DATABASE_URL"]
    created = aiblog("create-admin", "root", "--password", "a long admin password", env=env)
    assert created.returncode == 0 and "admin root created" in created.stdout, created.stderr
    assert users_and_roles(url)["root"] == "admin"
    app = make_app(url)
    assert app.test_client().post("/api/v1/tokens", auth=("root", "a long admin password")).status_code == 200

    short = aiblog("create-admin", "shorty", "--password", "short", env=env)
    assert short.returncode != 0 and "at least 8 characters" in short.stderr and "Traceback" not in short.stderr

    # The other cases through Flask's in-process runner: the same command, no process start-up.
    runner = app.test_cli_runner()
    refused = {
        ("quiet",): "--password or ADMIN_PASSWORD",
        ("x" * 41, "--password", "long enough"): "3 to 40 characters",
        ("bad name!", "--password", "long enough"): "Use letters, digits",
    }
    for args, message in refused.items():
        result = runner.invoke(args=["create-admin", *args])
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert set(users_and_roles(url)) == {"root"}

    result = runner.invoke(args=["create-admin", "envadmin"], env={"ADMIN_PASSWORD": "from the environment"})
    assert result.exit_code == 0, result.output
    assert runner.invoke(args=["seed"]).exit_code == 0
    promoted = runner.invoke(args=["create-admin", "DEMO"])
    assert promoted.exit_code == 0 and "demo is now an admin" in promoted.output
    assert users_and_roles(url) == {"root": "admin", "envadmin": "admin", "demo": "admin"}


def test_settings_markdown_lists_every_variable_and_matches_the_readme(fresh_sqlite):
    result = aiblog("settings", "--markdown", env=fresh_sqlite)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [s.env for s in config.SETTINGS]
    assert len({s.env for s in config.SETTINGS}) == len(config.SETTINGS)
    assert all(row.count("|") >= 4 and row.rstrip().endswith("|") for row in rows)
    assert result.stdout.strip() in (REPO / "README.md").read_text(), "README's table is out of date: paste `aiblog settings --markdown`"

    plain = aiblog("settings", env={**fresh_sqlite, "WEB_CONCURRENCY": "5"})
    assert plain.returncode == 0
    assert "WEB_CONCURRENCY=5" in plain.stdout and "SECRET_KEY=(set)" in plain.stdout
    assert "test-secret-key" not in plain.stdout  # never print the secret
