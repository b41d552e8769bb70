"""Throwaway servers for tests: each on a free loopback port, in a temp dir,
stopped when the test session ends. Nothing here depends on services that
happen to be running on the machine."""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

# One set of helpers for tests and make bench (wait_until raises a TimeoutError).
from loadtests.stack import free_port, port_open, wait_until  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"'{name}' not found: install the Debian package '{package}' (make test does this as root)")
    return path


class RedisServer:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="aiblog-redis-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        binary = require_binary("redis-server", "redis-server")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--maxclients", "4000", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), 10, f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
        wait_until(lambda: not port_open(self.port), 10, "redis-server to stop")

    def flush(self) -> None:
        import redis

        redis.Redis.from_url(self.url).flushall()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A private PostgreSQL cluster. As root it runs as the ``postgres`` user,
    because Postgres refuses to run as root."""

    def __init__(self):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="aiblog-pg-")
        self.data = os.path.join(self.dir, "data")
        self.bin = next((d for d in PG_BIN_DIRS if (d / "initdb").exists()), None)
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found: install the Debian package 'postgresql'")
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> "PostgresServer":
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chmod(self.dir, 0o755)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._run(str(self.bin / "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale")
        self._run(str(self.bin / "pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.url())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)

    def close(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", self.data, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def blog_env(**overrides: str) -> dict[str, str]:
    """Environment for a blog process: the caller's, minus the blog's own
    variables, plus ``overrides``."""
    from aiblog.config import SETTINGS

    env = {k: v for k, v in os.environ.items() if k not in {s.env for s in SETTINGS}}
    env.update({"SECRET_KEY": "test-secret-key-0123456789", "LOG_LEVEL": "warning"})
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "aiblog"), *args], env=env, cwd=REPO, check=True,
                          capture_output=True, text=True)


class Gunicorn:
    """The real blog under gunicorn with ``service/gunicorn.conf.py``."""

    def __init__(self, env: dict[str, str], workers: int = 2, app: str = "aiblog:create_app()"):
        self.port = free_port()
        self.metrics_port = free_port()
        self.env = blog_env(**{"PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
                               "WEB_CONCURRENCY": str(workers), **env})
        self.app = app
        self.process: subprocess.Popen | None = None
        self.log_path = tempfile.mktemp(prefix="aiblog-gunicorn-", suffix=".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 30) -> "Gunicorn":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", str(REPO / "service" / "gunicorn.conf.py"), self.app],
            env=self.env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

        def exited_or_ready() -> bool:
            if self.process.poll() is not None:
                return True  # reported below at once, not at the deadline
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200

        try:
            wait_until(exited_or_ready, timeout, "gunicorn /healthz")
        except TimeoutError:
            raise TimeoutError(f"gunicorn did not become ready:\n{self.log()}") from None
        if self.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
        return self

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-5000:]

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if getattr(self, "_log", None):
            self._log.close()
