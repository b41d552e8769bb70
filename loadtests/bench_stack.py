"""The stack ``make bench`` measures: every part of the dev stack (Postgres,
Redis, the LLM simulator, the blog under gunicorn with the production config,
its RQ worker) plus the bare Flask "hello" app as the ceiling, with the
load-test limits. ``Stack.stop()`` stops everything (also on errors and Ctrl-C).
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from devstack import Gunicorn, LLMSimulator, Postgres, Redis, RQWorker, blog_environment, run_aiblog

from .limits import LOAD_TEST_LIMITS


class Stack:
    """Postgres + Redis + LLM simulator + blog + worker + hello app."""

    def __init__(self, workdir: Path | None = None, answer_seconds: float = 2.5, posts: int = 1000,
                 blog_settings: dict | None = None, postgres: bool = True, hello: bool = True,
                 log: Callable[[str], None] = lambda text: None):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="aiblog-bench-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.answer_seconds = answer_seconds
        self.posts = posts
        self.blog_settings = blog_settings or {}
        self.use_postgres = postgres
        self.use_hello = hello
        self.log = log
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.llm: LLMSimulator | None = None
        self.blog: Gunicorn | None = None
        self.hello: Gunicorn | None = None
        self.worker: RQWorker | None = None
        self.env: dict = {}
        self.extra_blogs: list[Gunicorn] = []
        self.ai_pool: Gunicorn | None = None

    def settings(self) -> dict:
        """The blog's settings for this stack (recorded in results.json; the secret is not)."""
        database = self.postgres.url if self.postgres else f"sqlite:///{self.workdir / 'blog.sqlite3'}"
        return {
            "BLOG_ENV": "production",
            "DATABASE_URL": database,
            "REDIS_URL": self.redis.url,
            "LLM_API": "sim",
            "LLM_BASE_URL": self.llm.url,
            "LLM_SIMULATED": "1",
            # Plain HTTP on loopback: a Secure session cookie would never come back.
            "SESSION_COOKIE_SECURE": "0",
            "LOG_LEVEL": "warning",
            # A stack that exists to be load-tested: its users sign up and log in from one address.
            **LOAD_TEST_LIMITS,
            **{k: str(v) for k, v in self.blog_settings.items()},
        }

    def start(self) -> "Stack":
        try:
            if self.use_postgres:
                self.log("starting Postgres")
                self.postgres = Postgres(self.workdir).start()
            self.log("starting Redis and the LLM simulator")
            self.redis = Redis(self.workdir).start()
            self.llm = LLMSimulator(self.workdir, answer_seconds=self.answer_seconds).start()
            self.env = blog_environment(SECRET_KEY=secrets.token_hex(32), **self.settings())
            self.log("migrating and seeding")
            self.aiblog("migrate")
            self.seed(self.posts)
            self.log("starting the blog (gunicorn, production config) and its background worker")
            self.blog = Gunicorn(self.workdir, self.env).start()
            self.worker = RQWorker(self.workdir, self.env).start()
            if self.use_hello:
                self.log("starting the bare Flask hello app (same gunicorn config)")
                self.hello = Gunicorn(self.workdir, self.env, app="loadtests.hello_app:create_app()",
                                      name="hello").start()
        except BaseException:
            self.cleanup()  # a StackError carries the failing part's log in its message
            raise
        return self

    def aiblog(self, *args: str, timeout: float = 600, env: dict | None = None) -> str:
        return run_aiblog(*args, env=env or self.env, timeout=timeout)

    def seed(self, posts: int, env: dict | None = None) -> int:
        """Seed until the blog holds about ``posts`` posts; returns the total."""
        env = env or self.env
        # --force: a throwaway stack, run with BLOG_ENV=production, that wants the demo account.
        out = self.aiblog("seed", "--force", "--posts", "0", env=env)
        total = int(out.split()[0])
        if posts > total:
            out = self.aiblog("seed", "--force", "--posts", str(posts - total), env=env)
            total = int(out.split()[0])
            self._after_bulk_load(env["DATABASE_URL"])
        return total

    def start_blog_copy(self, name: str, posts: int, redis_db: int) -> tuple[Gunicorn, int]:
        """Another blog like the main one but with a database (and Redis
        database) of its own, seeded with ``posts`` posts: blogs that differ
        only in their data, to be measured side by side. Returns it and its
        number of posts."""
        if self.postgres is not None:
            database = self.postgres.create_database(name.replace("-", "_"))
        else:
            database = f"sqlite:///{self.workdir / (name + '.sqlite3')}"
        env = {**self.env, "DATABASE_URL": database, "REDIS_URL": f"{self.redis.url.rsplit('/', 1)[0]}/{redis_db}"}
        self.aiblog("migrate", env=env)
        total = self.seed(posts, env=env)
        return self.start_extra_blog(name, env=env), total

    def _after_bulk_load(self, database_url: str) -> None:
        """Settle the machine after a bulk insert, as an operator would before
        measuring: VACUUM ANALYZE (else autovacuum wakes up for the new rows
        during the next measurement), a CHECKPOINT and a sync (else the new
        rows are written back to disk during it)."""
        if database_url.startswith("postgresql"):
            from sqlalchemy import create_engine, text

            from aiblog import sqlalchemy_url

            engine = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as connection:
                    connection.execute(text("VACUUM ANALYZE"))
                    connection.execute(text("CHECKPOINT"))
            finally:
                engine.dispose()
        os.sync()

    def start_extra_blog(self, name: str, extra_args: list[str] | None = None, env: dict | None = None) -> Gunicorn:
        """Another gunicorn of the blog: the same one (same database and Redis,
        e.g. with an access log), or with ``env``'s settings instead."""
        blog = Gunicorn(self.workdir, env or self.env, name=name, extra_args=extra_args).start()
        self.extra_blogs.append(blog)
        return blog

    def start_ai_pool(self) -> Gunicorn:
        """The blog's AI pool: the same app, database and Redis in a gunicorn of its own, to
        which the chart's Ingress/HTTPRoute send the AI paths (``aiPool``): answers being
        written never share a worker process with page reads."""
        self.ai_pool = Gunicorn(self.workdir, self.env, name="blog-ai").start()
        return self.ai_pool

    def stop(self) -> None:
        for part in (*self.extra_blogs, self.ai_pool, self.hello, self.worker, self.blog, self.llm, self.redis):
            if part is not None:
                part.stop()
        if self.postgres is not None:
            self.postgres.stop()

    def keep_logs(self, directory: Path) -> None:
        """Copy every part's log (not the data) to ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        for log in [*self.workdir.glob("*.log"), self.workdir / "postgres" / "log"]:
            if log.is_file():
                shutil.copy(log, directory / (log.name if log.suffix == ".log" else "postgres.log"))

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
