"""`make run`: the whole blog on one machine, one process per role.

Starts (unless the environment already points elsewhere): a private Redis,
an LLM (the simulator, a local Ollama if one answers, or with ``--llm local``
a real llama-server with Gemma 3 270M), migrates and seeds the database, then
runs the RQ worker and gunicorn until Ctrl-C stops everything. The processes
are devstack's launchers, the same ones ``make bench`` and the tests use.

Every configuration variable set in the environment is honoured as is. The
rate limits a load test meets (loadtests.limits.LOAD_TEST_LIMITS) are raised
unless the environment sets them: ``blog-perf all`` against ``make run`` signs
its users up from one address.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiblog.config import ConfigError, load
from loadtests.limits import LOAD_TEST_LIMITS
from devstack import (
    Gunicorn, LLMSimulator, Redis, RQWorker, Service, StackError, free_port, http_ok, port_holder, port_open,
    run_aiblog,
)

ROOT = Path(__file__).resolve().parents[1]   # this checkout, wherever the packages were installed from
RUN_DIR = ROOT / ".run"
INSTANCE_DIR = ROOT / "instance"
DEFAULT_OLLAMA = "http://127.0.0.1:11434"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def say(message: str) -> None:
    print(f"\033[1;34m>>\033[0m {message}", flush=True)


def development_limits(env: dict[str, str]) -> list[str]:
    """Raise the limits a load test meets, except those the environment sets; the names raised.
    A production blog keeps its own (BLOG_ENV=production: nothing raised)."""
    if env.get("BLOG_ENV", "").strip().lower() == "production":
        return []
    raised = [name for name in LOAD_TEST_LIMITS if not env.get(name)]
    env.update({name: LOAD_TEST_LIMITS[name] for name in raised})
    return raised


def start_redis(parts: list[Service], env: dict[str, str]) -> None:
    if env.get("REDIS_URL"):
        return
    if shutil.which("redis-server") is None:
        say("redis-server not found (Debian package 'redis-server'): running with the in-process cache; "
            "background AI jobs are off")
        return
    port = int(env.get("DEV_REDIS_PORT", "6390"))
    redis = Redis(RUN_DIR / "redis", port if not port_open(port) else free_port(), persist=True, console=True)
    parts.append(redis.start())
    env["REDIS_URL"] = redis.url
    say(f"Redis at {env['REDIS_URL']}")


def start_llm(parts: list[Service], env: dict[str, str], choice: str) -> None:
    if choice == "local":
        sys.path.insert(0, str(ROOT / "scripts"))
        from local_llm import start_llama_server  # noqa: PLC0415 - optional extra

        say("starting llama-server with Gemma 3 270M (first time: builds the model file)")
        server = start_llama_server(tied=True)
        parts.append(server)
        env.update(LLM_API="openai", LLM_BASE_URL=server.base_url, LLM_MODEL=server.model, LLM_SIMULATED="0")
        say(f"real LLM at {server.base_url} ({server.model})")
        return
    if env.get("LLM_API") or env.get("LLM_BASE_URL"):
        say(f"LLM from the environment: {env.get('LLM_API', 'sim')} at {env.get('LLM_BASE_URL', DEFAULT_OLLAMA)}")
        return
    if choice in ("auto", "ollama") and http_ok(DEFAULT_OLLAMA + "/api/tags", timeout=0.5):
        env.update(LLM_API="ollama", LLM_BASE_URL=DEFAULT_OLLAMA)
        say(f"using the Ollama server at {DEFAULT_OLLAMA}")
        return
    simulator = LLMSimulator(RUN_DIR, tied=True, answer_seconds=float(env.get("SIM_ANSWER_SECONDS", "2.5")),
                             ttft=None, tokens=None)
    parts.append(simulator.start())
    env.update(LLM_API="sim", LLM_BASE_URL=simulator.url, LLM_SIMULATED="1")
    say(f"no LLM configured and none at {DEFAULT_OLLAMA}: using the simulator (answers are labelled simulated)")


def local_environment() -> dict[str, str]:
    """The caller's environment with a SQLite database and a secret key in
    ``instance/`` unless it names its own (the folder exists either way)."""
    env = dict(os.environ)
    RUN_DIR.mkdir(exist_ok=True)
    INSTANCE_DIR.mkdir(exist_ok=True)
    env.setdefault("DATABASE_URL", "sqlite:///" + str(INSTANCE_DIR / "aiblog.sqlite3"))
    if not env.get("SECRET_KEY"):
        key_file = INSTANCE_DIR / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        env["SECRET_KEY"] = key_file.read_text().strip()
    return env


def announce_development_limits(env: dict[str, str]) -> None:
    raised = development_limits(env)
    if raised:
        by_value: dict[str, list[str]] = {}
        for name in raised:
            by_value.setdefault(LOAD_TEST_LIMITS[name], []).append(name)
        say("development limits, for load tests from this machine: "
            + "; ".join(f"{', '.join(names)} = {value}" for value, names in by_value.items())
            + " (set them in the environment to use others)")


def stop_requested(signum, frame) -> None:
    """The first of Ctrl-C, SIGTERM or SIGHUP stops everything. Later ones are
    ignored: make and timeout signal twice, and a second KeyboardInterrupt in
    the middle of stopping would leave the rest running."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt


def ports_in_use(env: dict[str, str], settings: dict) -> str | None:
    """One line naming the first of our fixed ports that something else holds, and who."""
    wanted = [("PORT", settings["PORT"]), ("METRICS_PORT", settings["METRICS_PORT"])]
    if env.get("REDIS_URL"):
        wanted.append(("WORKER_METRICS_PORT", settings["WORKER_METRICS_PORT"]))
    for name, port in wanted:
        if port and port_open(port):
            holder = port_holder(port) or "another process (not visible to this user)"
            return f"port {port} ({name}) is in use by {holder}: stop it, or set {name} to a free port"
    return None


def watch(parts: list[Service]) -> int:
    """Until one part exits: its exit code (1 if it was 0)."""
    while True:
        for part in parts:
            if not part.running:
                code = part.process.returncode
                say(f"{part.name} exited with code {code}; stopping the rest")
                return code or 1
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", choices=["auto", "sim", "local", "ollama"], default="auto",
                        help="which LLM to use when none is configured (default: Ollama if it answers, else the simulator)")
    args = parser.parse_args()

    env = local_environment()
    # Only gunicorn shares metrics between processes (its config creates
    # and empties this dir); one-off commands and the worker keep theirs in memory.
    metrics_dir = env.pop("PROMETHEUS_MULTIPROC_DIR", None) or str(RUN_DIR / "metrics")
    production = env.get("BLOG_ENV", "").strip().lower() == "production"

    parts: list[Service] = []  # started so far; stopped in reverse
    for number in STOP_SIGNALS:
        signal.signal(number, stop_requested)
    announce_development_limits(env)
    try:
        settings = load(env)
        start_redis(parts, env)
        busy = ports_in_use(env, settings)
        if busy:
            say(f"cannot start: {busy}")
            return 1
        start_llm(parts, env, args.llm)
        say("migrating the database")
        print(run_aiblog("migrate", env=env), end="", flush=True)
        if production:
            # The demo account's password is public: never create it here.
            say("BLOG_ENV=production: no demo account; make yours with "
                f"DATABASE_URL={env['DATABASE_URL']} {Path(sys.executable).parent / 'aiblog'} create-admin NAME")
        else:
            print(run_aiblog("seed", env=env), end="", flush=True)
        if env.get("REDIS_URL"):
            parts.append(RQWorker(RUN_DIR, env, console=True, metrics_port=settings["WORKER_METRICS_PORT"]).start())
        blog = Gunicorn(RUN_DIR, env, port=settings["PORT"], metrics_port=settings["METRICS_PORT"],
                        multiproc_dir=metrics_dir, console=True)
        parts.append(blog.start())
        say(f"aiblog is running at {blog.url}" + ("" if production else "  (log in as demo / demo-password)"))
        say(f"metrics at {blog.metrics_url}; Ctrl-C stops everything")
        return watch(parts)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except (ConfigError, StackError, subprocess.TimeoutExpired) as exc:
        say(f"cannot start: {exc}")
        return 1
    finally:
        for number in STOP_SIGNALS:   # nothing may cut the stopping short
            signal.signal(number, signal.SIG_IGN)
        for part in reversed(parts):
            part.stop()


if __name__ == "__main__":
    sys.exit(main())
