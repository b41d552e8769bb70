"""`make run`: the whole blog on one machine, one process per role.

Starts (unless the environment already points elsewhere): a private Redis,
an LLM (the simulator, a local Ollama if one answers, or with ``--llm local``
a real llama-server with Gemma 3 270M), migrates and seeds the database, then
runs the RQ worker and gunicorn until Ctrl-C stops everything.

Every configuration variable set in the environment is honoured as is.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUN_DIR = REPO / ".run"
DEFAULT_OLLAMA = "http://127.0.0.1:11434"


def say(message: str) -> None:
    print(f"\033[1;34m>>\033[0m {message}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s")


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


class Supervisor:
    def __init__(self):
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(argv, env=env, cwd=REPO, **kwargs)
        self.children.append((name, process))
        return process

    def stop_all(self) -> None:
        for name, process in reversed(self.children):
            if process.poll() is None:
                process.terminate()
        for name, process in reversed(self.children):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()

    def watch(self) -> int:
        while True:
            for name, process in self.children:
                code = process.poll()
                if code is not None:
                    say(f"{name} exited with code {code}; stopping the rest")
                    return code or 1
            time.sleep(0.5)


def start_redis(sup: Supervisor, env: dict[str, str]) -> None:
    if env.get("REDIS_URL"):
        return
    binary = shutil.which("redis-server")
    if binary is None:
        say("redis-server not found (Debian package 'redis-server'): running with the in-process cache; "
            "background AI jobs are off")
        return
    port = int(env.get("DEV_REDIS_PORT", "6390"))
    if not port_free(port):
        port = free_port()
    data = RUN_DIR / "redis"
    data.mkdir(parents=True, exist_ok=True)
    sup.start("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                        "--save", "60 1", "--loglevel", "warning"], env, stdout=subprocess.DEVNULL)
    wait_for(lambda: not port_free(port), "redis-server", 10)
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    say(f"Redis at {env['REDIS_URL']}")


def start_llm(sup: Supervisor, env: dict[str, str], choice: str) -> None:
    if choice == "local":
        sys.path.insert(0, str(REPO / "scripts"))
        from local_llm import start_llama_server  # noqa: PLC0415 - optional extra

        say("starting llama-server with Gemma 3 270M (first time: builds the model file)")
        server = start_llama_server()
        sup.children.append(("llama-server", server.process))
        env.update(LLM_API="openai", LLM_BASE_URL=server.base_url, LLM_MODEL=server.model, LLM_SIMULATED="0")
        say(f"real LLM at {server.base_url} ({server.model})")
        return
    if env.get("LLM_API") or env.get("LLM_BASE_URL"):
        say(f"LLM from the environment: {env.get('LLM_API', 'sim')} at {env.get('LLM_BASE_URL', DEFAULT_OLLAMA)}")
        return
    if choice in ("auto", "ollama") and http_ok(DEFAULT_OLLAMA + "/api/tags"):
        env.update(LLM_API="ollama", LLM_BASE_URL=DEFAULT_OLLAMA)
        say(f"using the Ollama server at {DEFAULT_OLLAMA}")
        return
    port = free_port()
    sup.start("llm-simulator", [str(BIN / "blog-llm-sim"), "--port", str(port), "--model", "*",
                                "--answer-seconds", env.get("SIM_ANSWER_SECONDS", "2.5")], env,
              stdout=subprocess.DEVNULL)
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/api/tags"), "the LLM simulator", 15)
    env.update(LLM_API="sim", LLM_BASE_URL=f"http://127.0.0.1:{port}", LLM_SIMULATED="1")
    say(f"no LLM configured and none at {DEFAULT_OLLAMA}: using the simulator (answers are labelled simulated)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llm", choices=["auto", "sim", "local", "ollama"], default="auto",
                        help="which LLM to use when none is configured (default: Ollama if it answers, else the simulator)")
    args = parser.parse_args()

    env = dict(os.environ)
    RUN_DIR.mkdir(exist_ok=True)
    env.setdefault("DATABASE_URL", "sqlite:///" + str(REPO / "instance" / "aiblog.sqlite3"))
    if not env.get("SECRET_KEY"):
        key_file = REPO / "instance" / "secret_key"
        key_file.parent.mkdir(exist_ok=True)
        if not key_file.exists():
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        env["SECRET_KEY"] = key_file.read_text().strip()
    # Only gunicorn shares metrics between processes (its config creates
    # and empties this dir); one-off commands and the worker keep theirs in memory.
    metrics_dir = env.pop("PROMETHEUS_MULTIPROC_DIR", None) or str(RUN_DIR / "metrics")

    sup = Supervisor()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        start_redis(sup, env)
        start_llm(sup, env, args.llm)
        say("migrating the database")
        subprocess.run([str(BIN / "aiblog"), "migrate"], env=env, cwd=REPO, check=True)
        subprocess.run([str(BIN / "aiblog"), "seed"], env=env, cwd=REPO, check=True)
        if env.get("REDIS_URL"):
            sup.start("worker", [str(BIN / "blog-worker")], env)
        port = env.get("PORT", "8000")
        sup.start("gunicorn", [str(BIN / "gunicorn"), "-c", str(REPO / "service" / "gunicorn.conf.py"),
                               "aiblog:create_app()"], {**env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), "gunicorn", 30)
        say(f"aiblog is running at http://127.0.0.1:{port}  (log in as demo / demo-password)")
        say(f"metrics at http://127.0.0.1:{env.get('METRICS_PORT', '9100')}/metrics; Ctrl-C stops everything")
        return sup.watch()
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except subprocess.CalledProcessError as exc:
        say(f"{' '.join(map(str, exc.cmd))} failed with code {exc.returncode}")
        return 1
    finally:
        sup.stop_all()


if __name__ == "__main__":
    sys.exit(main())
