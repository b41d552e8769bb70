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
import re
import subprocess
import sys
import time
import urllib.request

from devstack import Gunicorn, Redis, blog_environment, run_aiblog

CONTENT_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.I)


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

class Blog(Gunicorn):
    def __init__(self, workdir, env: dict, metrics: bool):
        super().__init__(workdir, {**env, "METRICS_ENABLED": "true" if metrics else "false"},
                         name=f"blog-metrics-{'on' if metrics else 'off'}")

    def start(self) -> "Blog":
        super().start()
        urllib.request.urlopen(self.url + "/").read()  # warm the page cache
        return self

    def series(self) -> int:
        with urllib.request.urlopen(self.metrics_url) as response:
            return sum(1 for line in response.read().decode().splitlines() if line and not line.startswith("#"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="load time per setting")
    parser.add_argument("--slice", type=float, default=2, help="seconds per alternating slice")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--path", default="/")
    args = parser.parse_args()

    redis = Redis().start()  # its temp dir holds the blog's database too
    env = blog_environment(DATABASE_URL=f"sqlite:///{redis.workdir / 'blog.sqlite3'}", REDIS_URL=redis.url,
                           WEB_CONCURRENCY=args.workers, SECRET_KEY="overhead-measurement-key-0123456789",
                           LOG_LEVEL="warning")
    blogs: dict[bool, Blog] = {}
    try:
        for command in ("migrate", "seed"):
            run_aiblog(command, env=env)
        blogs = {metrics: Blog(redis.workdir, env, metrics).start() for metrics in (True, False)}
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
        redis.close()
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        port, path, seconds, connections = int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(asyncio.run(_load(port, path, seconds, connections))))
        sys.exit(0)
    sys.exit(main())
