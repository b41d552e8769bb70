"""Throwaway processes on free loopback ports: the one toolkit of ``make
bench``, ``make run`` (scripts/devserver.py), the scripts and the tests.

Free ports, a readiness wait, and launchers for Redis, Postgres, the LLM
simulator, the blog (or any app) under gunicorn with the production config,
and the RQ worker. Each part runs in a session of its own (Ctrl-C in the
terminal does not kill it half-way; ``stop`` does), keeps its log in its
folder (a temp dir unless one is given, removed by ``close``) and listens on
127.0.0.1 only. ``Stack`` starts all of them, and the bare Flask "hello" app,
for ``make bench``; ``Stack.stop()`` stops everything (also on errors and Ctrl-C).

Kept inside ``loadtests`` (not tests/) because the benchmark must run without
the test suite.
"""
from __future__ import annotations

import ctypes
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
from typing import Any, Callable
from urllib.parse import quote

import httpx

from .limits import LOAD_TEST_LIMITS

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
THIS_PROJECT = "this project (pip install -e .)"
PR_SET_PDEATHSIG = 1


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


def port_holder(port: int) -> str | None:
    """``"NAME (pid N)"`` of the process listening on 127.0.0.1/any address at
    ``port``, read from /proc (Linux); None when it cannot be seen."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                name = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                return f"{Path(name).name or '?'} (pid {proc.name})"
        except OSError:   # gone, or not ours to read
            continue
    return None


def die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so ``make run`` leaves no orphans."""
    def tie() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):   # not Linux: stop() is the only way
            return
        if os.getppid() != parent:   # the parent died before the tie was made
            os._exit(1)
    return tie


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers 200 (False while nothing listens there)."""
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


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


def require_binary(name: str, install: str) -> str:
    """The path of program ``name`` (the venv's first), or a StackError saying to install ``install``."""
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise StackError(f"'{name}' not found: install {install}")


def run_aiblog(*args: str, env: dict, timeout: float = 600) -> str:
    """``aiblog ARGS`` (migrate, seed...) to completion; its output, or a StackError carrying it."""
    done = subprocess.run([require_binary("aiblog", THIS_PROJECT), *args], env=env, cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if done.returncode != 0:
        raise StackError(f"aiblog {' '.join(args)} failed:\n{done.stdout[-3000:]}")
    return done.stdout


def blog_environment(**settings: Any) -> dict:
    """The caller's environment without any blog setting, plus ``settings``."""
    from aiblog.config import SETTINGS

    own = {s.env for s in SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in own}
    env.update({k: str(v) for k, v in settings.items()})
    return env


class Service:
    """A child process in its own session, with its log in its folder.

    ``console=True`` (``make run``) sends its output to the terminal instead,
    and (like ``tied=True``) ties the child's life to this process: a terminal
    that closes or a ``kill -9`` of the dev server still stops it."""

    name = "service"

    def __init__(self, workdir: Path | str | None = None, console: bool = False, tied: bool | None = None):
        self.tied = console if tied is None else tied
        self.own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"aiblog-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self._log = None

    def _spawn(self, args: list[str], env: dict | None = None) -> None:
        if not self.console:
            self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent(os.getpid()) if self.tied else None)

    def _await(self, ready: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until ``ready()``. If the process dies or the time runs out, stop it
        and raise a StackError carrying its log."""
        try:
            wait_until(lambda: self.check_alive() or ready(), timeout, what)
        except StackTimeout as exc:
            self.stop()
            raise StackTimeout(f"{exc}; {self.name}'s log:\n{self.log_tail()}") from None
        except BaseException:  # it died, or Ctrl-C: never leave it running
            self.stop()
            raise

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise StackError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, grace: float = 15) -> None:
        if self.running:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop, and remove the folder if this part made it."""
        self.stop()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self):
        raise NotImplementedError

    def __enter__(self):
        return self if self.running else self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class Redis(Service):
    """``redis-server``; ``persist`` keeps its data in the folder across restarts (``make run``)."""

    name = "redis"

    def __init__(self, workdir: Path | str | None = None, port: int | None = None, *, password: str | None = None,
                 persist: bool = False, console: bool = False):
        super().__init__(workdir, console)
        self.port = port or free_port()
        self.password = password
        self.persist = persist

    @property
    def url(self) -> str:
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> "Redis":
        args = [require_binary("redis-server", "the Debian package 'redis-server'"), "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", str(self.workdir), "--maxclients", "10000", "--loglevel", "warning",
                "--save", "60 1" if self.persist else "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self._spawn(args)
        self._await(lambda: port_open(self.port), 10, f"redis-server on port {self.port}")
        return self

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()


class Postgres:
    """A private cluster. Postgres refuses to run as root, so as root it runs as
    the ``postgres`` user in a directory that user owns."""

    name = "postgres"

    def __init__(self, workdir: Path | str | None = None):
        self.own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="aiblog-postgres-"))
        self.port = free_port()
        self.dir = self.workdir / "postgres"
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
        # Durability off: a throwaway database, measured for speed, not crash safety.
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=400", "start")
        self.started = True
        self.create_database("aiblog")
        return self

    def stop(self) -> None:
        if self.started:
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            except StackError:
                pass
            self.started = False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir if self.own_workdir else self.dir, ignore_errors=True)

    def __enter__(self) -> "Postgres":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class LLMSimulator(Service):
    """``blog-llm-sim``. Options are its settings (``answer_seconds``, ``ttft``,
    ``tokens``, ``tokens_per_second``, ``error_rate``, ``hang_rate``,
    ``cut_rate``, ``seed``, ``models``), passed as flags; ``None`` leaves the
    simulator's own default. Without options it answers any model in 2.5 s."""

    name = "llm-sim"
    DEFAULTS = {"answer_seconds": 2.5, "ttft": 0.2, "tokens": 120, "models": ["*"]}

    def __init__(self, workdir: Path | str | None = None, console: bool = False, tied: bool | None = None,
                 **options: Any):
        super().__init__(workdir, console, tied)
        self.port = free_port()
        self.options = {key: value for key, value in {**self.DEFAULTS, **options}.items() if value is not None}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [require_binary("blog-llm-sim", THIS_PROJECT), "--port", str(self.port)]
        for key, value in self.options.items():
            if key in ("model", "models"):
                command += [arg for name in ([value] if isinstance(value, str) else value) for arg in ("--model", name)]
            else:
                command += [f"--{key.replace('_', '-')}", str(value)]
        return command

    def start(self, timeout: float = 30) -> "LLMSimulator":
        self._spawn(self.command())
        # /sim/stats is not counted, so readiness polls leave the counts at 0.
        self._await(lambda: http_ok(self.url + "/sim/stats"), timeout, "the LLM simulator")
        return self

    def stats(self) -> dict:
        return httpx.get(self.url + "/sim/stats", timeout=5).json()

    def reset(self) -> dict:
        return httpx.post(self.url + "/sim/reset", timeout=5).json()

    def configure(self, **settings: Any) -> dict:
        response = httpx.post(self.url + "/sim/config", json=settings, timeout=5)
        if response.status_code != 200:
            raise ValueError(f"blog-llm-sim refused {settings}: {response.text}")
        return response.json()


class Gunicorn(Service):
    """An app (the blog unless ``app`` says otherwise) under the production
    serving config, ``aiblog.gunicorn_conf``, on free ports unless
    ``port``/``metrics_port`` are given."""

    def __init__(self, workdir: Path | str | None = None, env: dict | None = None, app: str = "aiblog:create_app()",
                 name: str = "blog", extra_args: list[str] | None = None, *, workers: int | None = None,
                 port: int | None = None, metrics_port: int | None = None, multiproc_dir: str | None = None,
                 console: bool = False):
        self.name = name
        super().__init__(workdir, console)
        self.port = port or free_port()
        self.metrics_port = metrics_port or free_port()
        self.env = {**(blog_environment() if env is None else env), "PORT": str(self.port),
                    "METRICS_PORT": str(self.metrics_port)}
        # Without a metrics dir, gunicorn makes a private one and removes it when it stops.
        self.multiproc_dir = multiproc_dir
        if multiproc_dir:
            self.env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
        if workers is not None:
            self.env["WEB_CONCURRENCY"] = str(workers)
        self.app = app
        self.extra_args = extra_args or []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60) -> "Gunicorn":
        from aiblog.cli import GUNICORN_CONFIG

        self._spawn([require_binary("gunicorn", THIS_PROJECT), "--config", GUNICORN_CONFIG, *self.extra_args,
                     self.app], env=self.env)
        self._await(lambda: http_ok(self.url + "/healthz", timeout=2), timeout, f"{self.name} (gunicorn) /healthz")
        return self

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid) if self.process else []

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: rss for pid in self.worker_pids() if (rss := rss_mb(pid)) is not None}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the master and its workers so far."""
        return sum(cpu_seconds(pid) for pid in [self.process.pid, *self.worker_pids()])


class RQWorker(Service):
    """``blog-worker``, the RQ worker of background AI jobs, with its metrics on a free port."""

    name = "blog-worker"

    def __init__(self, workdir: Path | str | None = None, env: dict | None = None, console: bool = False,
                 metrics_port: int | None = None):
        super().__init__(workdir, console)
        # 0 turns the worker's metrics server off.
        self.metrics_port = free_port() if metrics_port is None else metrics_port
        self.env = {**(env or blog_environment()), "WORKER_METRICS_PORT": str(self.metrics_port)}

    def start(self, timeout: float = 30) -> "RQWorker":
        import redis
        from rq import Worker

        self._spawn([require_binary("blog-worker", THIS_PROJECT)], env=self.env)
        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        # A worker has no port of its own to poll; it is ready once it has registered in Redis.
        self._await(lambda: any(w.pid == self.process.pid for w in Worker.all(connection=connection)),
                    timeout, "blog-worker to register in Redis")
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
