#!/usr/bin/env python3
"""What the Prometheus instrumentation costs: home page throughput with
METRICS_ENABLED=true and =false, same gunicorn config, measured in one run.

Starts a throwaway Redis, a seeded SQLite blog and both gunicorns side by
side, then loads them in short alternating slices (A B A B ...), so the
changing load of a shared machine hits both alike. The load comes from a
separate process: keep-alive HTTP/1.1 connections in plain asyncio. Two
figures: throughput, and gunicorn CPU time per request (read from /proc,
hardly disturbed by other programs on the machine). Also prints the number
of series the metrics server exposes after the load.

    python scripts/metrics_overhead.py --seconds 10
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.I)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


# --- the load (runs in its own process) ----------------------------------------

async def _connection(port: int, path: str, deadline: float) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    ok = failed = 0
    while time.monotonic() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(CONTENT_LENGTH.search(head).group(1)))
        if head.startswith(b"HTTP/1.1 200"):
            ok += 1
        else:
            failed += 1
    writer.close()
    return [ok, failed]


async def _load(port: int, path: str, seconds: float, connections: int) -> dict:
    started = time.monotonic()
    results = await asyncio.gather(*(_connection(port, path, started + seconds) for _ in range(connections)))
    elapsed = time.monotonic() - started
    ok = sum(r[0] for r in results)
    return {"ok": ok, "failed": sum(r[1] for r in results), "rps": ok / elapsed}


def run_load(port: int, path: str, seconds: float, connections: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--load", str(port), path, str(seconds), str(connections)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


# --- the blog ------------------------------------------------------------------

class Blog:
    def __init__(self, env: dict, metrics: bool):
        self.port, self.metrics_port = free_port(), free_port()
        self.env = {**env, "PORT": str(self.port), "METRICS_PORT": str(self.metrics_port),
                    "METRICS_ENABLED": "true" if metrics else "false"}
        self.process = subprocess.Popen([str(BIN / "gunicorn"), "-c", str(REPO / "service" / "gunicorn.conf.py"),
                                         "aiblog:create_app()"], env=self.env, cwd=REPO,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{self.port}/healthz")
        urllib.request.urlopen(f"http://127.0.0.1:{self.port}/").read()  # warm the page cache

    def series(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
            return sum(1 for line in response.read().decode().splitlines() if line and not line.startswith("#"))

    def cpu_seconds(self) -> float:
        """User + system CPU of the master and its workers so far."""
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        total = 0.0
        for pid in [self.process.pid, *map(int, children.split())]:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="load time per setting")
    parser.add_argument("--slice", type=float, default=2, help="seconds per alternating slice")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="aiblog-overhead-"))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(scratch)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex(("127.0.0.1", redis_port)) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{scratch / 'blog.sqlite3'}",
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "WEB_CONCURRENCY": str(args.workers),
           "SECRET_KEY": "overhead-measurement-key-0123456789", "LOG_LEVEL": "warning"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    blogs: dict[bool, Blog] = {}
    try:
        for command in (["migrate"], ["seed"]):
            done = subprocess.run([str(BIN / "aiblog"), *command], env=env, cwd=REPO, capture_output=True, text=True)
            if done.returncode:
                raise SystemExit(f"aiblog {command[0]} failed:\n{done.stdout}{done.stderr}")
        blogs = {metrics: Blog(env, metrics) for metrics in (True, False)}
        for blog in blogs.values():
            run_load(blog.port, args.path, 1, args.connections)  # warm-up
        done = {True: 0, False: 0}
        failed = {True: 0, False: 0}
        seconds = {True: 0.0, False: 0.0}
        cpu = {True: 0.0, False: 0.0}
        for number in range(max(1, round(args.seconds / args.slice))):
            order = (True, False) if number % 2 == 0 else (False, True)  # neither always goes first
            for metrics in order:
                blog = blogs[metrics]
                cpu_before = blog.cpu_seconds()
                result = run_load(blog.port, args.path, args.slice, args.connections)
                cpu[metrics] += blog.cpu_seconds() - cpu_before
                done[metrics] += result["ok"]
                failed[metrics] += result["failed"]
                seconds[metrics] += result["ok"] / result["rps"]
        series = blogs[True].series()
        rps = {m: done[m] / seconds[m] for m in blogs}
        cpu_ms = {m: cpu[m] / done[m] * 1000 for m in blogs}
        for metrics in (True, False):
            print(f"metrics {'on ' if metrics else 'off'}: {rps[metrics]:7.0f} req/s, "
                  f"{cpu_ms[metrics]:.3f} ms gunicorn CPU per request, {done[metrics]} requests, "
                  f"{failed[metrics]} failed")
        print(f"overhead: throughput {(rps[False] - rps[True]) / rps[False] * 100:+.1f}%, "
              f"CPU per request {(cpu_ms[True] - cpu_ms[False]) / cpu_ms[False] * 100:+.1f}%")
        print(f"series exposed after the load: {series}")
    finally:
        for blog in blogs.values():
            blog.stop()
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        port, path, seconds, connections = int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(asyncio.run(_load(port, path, seconds, connections))))
        sys.exit(0)
    sys.exit(main())
