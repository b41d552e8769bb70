"""A complete throwaway blog stack on free loopback ports, for ``make bench``.

Postgres and Redis in temp dirs, the LLM simulator, the blog under gunicorn
with the production config, its RQ worker (``blog-worker``), and the bare
Flask "hello" app under the same gunicorn config. Everything is stopped by
``Stack.stop()`` (also on errors and Ctrl-C); nothing listens beyond 127.0.0.1.

Kept inside ``loadtests`` (not tests/) because the benchmark must run without
the test suite; tests may reuse it.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import httpx

REPO = Path(__file__).resolve().parents[1]
GUNICORN_CONF = REPO / "service" / "gunicorn.conf.py"
VENV_BIN = Path(sys.executable).parent
PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


class StackError(RuntimeError):
    """A part of the stack did not start (the message carries its log)."""


class StackTimeout(StackError, TimeoutError):
    """Something waited for did not happen in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition",
               interval: float = 0.05):
    """Poll until ``predicate`` is truthy; raise StackTimeout naming ``what`` at the deadline.
    A StackError raised by the predicate (a part died) ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except StackError:
            raise
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
        time.sleep(interval)
    raise StackTimeout(f"timed out after {timeout:g}s waiting for {what}"
                     + (f" (last error: {last_error!r})" if last_error else ""))


def _binary(name: str, package: str) -> str:
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise StackError(f"'{name}' not found: install {package}")


class Service:
    """A child process in its own session (Ctrl-C in the terminal does not kill
    it half-way; ``stop`` does, after the run has saved its results)."""

    name = "service"

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / f"{self.name}.log"

    def _spawn(self, args: list[str], env: dict | None = None) -> None:
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise StackError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, grace: float = 15) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        if getattr(self, "_log", None):
            self._log.close()


class Redis(Service):
    name = "redis"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        self._spawn([_binary("redis-server", "the Debian package redis-server"), "--port", str(self.port),
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                     "--maxclients", "10000", "--loglevel", "warning"])
        wait_until(lambda: self.check_alive() or port_open(self.port), 10, f"redis-server on port {self.port}")
        return self


class Postgres:
    """A private cluster. Postgres refuses to run as root, so as root it runs as
    the ``postgres`` user in a directory that user owns."""

    name = "postgres"

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "postgres"
        self.data = self.dir / "data"
        self.bin = next((d for d in PG_BIN_DIRS if (d / "initdb").exists()), None)
        if self.bin is None:
            raise StackError("PostgreSQL server binaries not found: install the Debian package 'postgresql'")
        self.as_postgres = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if self.as_postgres else list(args)
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if done.returncode != 0:
            raise StackError(f"{' '.join(args[:2])} failed:\n{done.stdout[-3000:]}")

    @property
    def url(self) -> str:
        return self.database_url("aiblog")

    def database_url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database)
        return self.database_url(database)

    def start(self) -> "Postgres":
        self.dir.mkdir(parents=True)
        if self.as_postgres:
            entry = pwd.getpwnam("postgres")
            for path in (self.dir.parent, self.dir):
                os.chmod(path, 0o755)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-locale")
        # Durability off: a throwaway benchmark database, measured for speed, not crash safety.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400", "start")
        self.started = True
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "aiblog")
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            except StackError:
                pass
            self.started = False


class LLMSimulator(Service):
    name = "llm-sim"

    def __init__(self, workdir: Path, answer_seconds: float = 2.5, ttft: float = 0.2, tokens: int = 120):
        super().__init__(workdir)
        self.port = free_port()
        self.options = {"answer_seconds": answer_seconds, "ttft": ttft, "tokens": tokens}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LLMSimulator":
        self._spawn([_binary("blog-llm-sim", "this project (pip install -e .)"), "--port", str(self.port),
                     "--model", "*", "--ttft", str(self.options["ttft"]), "--tokens", str(self.options["tokens"]),
                     "--answer-seconds", str(self.options["answer_seconds"])])
        wait_until(lambda: self.check_alive() or httpx.get(self.url + "/sim/stats", timeout=1).status_code == 200,
                   15, "the LLM simulator")
        return self

    def stats(self) -> dict:
        return httpx.get(self.url + "/sim/stats", timeout=5).json()

    def reset(self) -> None:
        httpx.post(self.url + "/sim/reset", timeout=5)


class Gunicorn(Service):
    """An app under ``service/gunicorn.conf.py`` (the production serving config)."""

    def __init__(self, workdir: Path, env: dict, app: str = "aiblog:create_app()", name: str = "blog",
                 extra_args: list[str] | None = None):
        self.name = name
        super().__init__(workdir)
        self.port = free_port()
        self.metrics_port = free_port()
        # Each gunicorn its own metrics dir: it is emptied when a server starts.
        self.env = {**env, "PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
                    "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"prometheus-{name}")}
        self.app = app
        self.extra_args = extra_args or []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Gunicorn":
        self._spawn([_binary("gunicorn", "gunicorn (pip install -e .)"), "-c", str(GUNICORN_CONF),
                     *self.extra_args, self.app], env=self.env)

        def ready() -> bool:
            self.check_alive()
            return httpx.get(self.url + "/healthz", timeout=2).status_code == 200

        wait_until(ready, timeout, f"{self.name} (gunicorn) /healthz")
        return self

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: rss for pid in self.worker_pids() if (rss := rss_mb(pid)) is not None}


class RQWorker(Service):
    """``blog-worker``, the RQ worker of background AI jobs, with its metrics on a free port."""

    name = "blog-worker"

    def __init__(self, workdir: Path, env: dict):
        super().__init__(workdir)
        self.metrics_port = free_port()
        self.env = {**env, "WORKER_METRICS_PORT": str(self.metrics_port)}

    def start(self) -> "RQWorker":
        import redis
        from rq import Worker

        self._spawn([_binary("blog-worker", "this project (pip install -e .)")], env=self.env)
        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        # A worker has no port to poll; it is ready once it has registered itself in Redis.
        wait_until(lambda: self.check_alive() or any(w.pid == self.process.pid for w in Worker.all(connection=connection)),
                   20, "blog-worker")
        return self


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def blog_environment(**settings: str) -> dict:
    """The caller's environment without any blog setting, plus ``settings``."""
    from aiblog.config import SETTINGS

    own = {s.env for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update({k: str(v) for k, v in settings.items()})
    return env


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
        done = subprocess.run([_binary("aiblog", "this project (pip install -e .)"), *args], env=env or self.env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if done.returncode != 0:
            raise StackError(f"aiblog {' '.join(args)} failed:\n{done.stdout[-3000:]}")
        return done.stdout

    def seed(self, posts: int, env: dict | None = None) -> int:
        """Seed until the blog holds about ``posts`` posts; returns the total."""
        env = env or self.env
        out = self.aiblog("seed", "--posts", "0", env=env)
        total = int(out.split()[0])
        if posts > total:
            out = self.aiblog("seed", "--posts", str(posts - total), env=env)
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

            engine = create_engine(database_url, isolation_level="AUTOCOMMIT")
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

    def stop(self) -> None:
        for part in (*self.extra_blogs, self.hello, self.worker, self.blog, self.llm, self.redis):
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
