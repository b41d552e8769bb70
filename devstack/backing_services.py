"""The blog's neighbours as real processes: Redis, a private PostgreSQL
cluster, and the LLM simulator (``blog-llm-sim``)."""
from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .ports import free_port, http_ok, port_open
from .processes import THIS_PROJECT, Service, StackError, require_binary

PG_BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


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
        self.spawn(args)
        self.wait_ready(lambda: port_open(self.port), 10, f"redis-server on port {self.port}")
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

    def pid(self) -> int | None:
        """The postmaster's process id while the cluster runs (its backends are its children)."""
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

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
        self.spawn(self.command())
        # /sim/stats is not counted, so readiness polls leave the counts at 0.
        self.wait_ready(lambda: http_ok(self.url + "/sim/stats"), timeout, "the LLM simulator")
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
