"""Concurrency tester: for each endpoint and each level N, N clients send
requests back to back for a few seconds; latency percentiles, throughput and
error rate per level.

Every failed request is counted with its kind (timeout, connection,
status:NNN) — nothing is dropped. With ``client_processes > 1`` the clients
are spread over several processes, because one Python process cannot
generate more than a few thousand requests per second.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor

import aiohttp

from perfcontract.results_file import now_iso

from . import blog_api, blog_client, stats
from .concurrency_clients import (RequestSpec, Samples, init_worker, level_result, run_clients, split_clients,
                                  worker_level)
from .progress import Progress, bar

DEFAULT_LEVELS = (1, 5, 10, 20, 50, 100, 200, 500)
ENDPOINTS = ("home", "post", "ai")


class ConcurrencyTester:
    def __init__(self, target: str, levels=DEFAULT_LEVELS, duration: float = 3.0, timeout: float = 30.0,
                 client_processes: int = 1, progress: Progress | None = None):
        self.target = target.rstrip("/")
        self.levels = [int(level) for level in levels]
        self.duration = duration
        self.timeout = timeout
        self.client_processes = max(1, client_processes)
        self.progress = progress or Progress(quiet=True)
        self._pool: ProcessPoolExecutor | None = None
        self._stop_event = None

    def parameters(self) -> dict:
        return {"levels": self.levels, "duration_s": self.duration, "timeout_s": self.timeout,
                "client_processes": self.client_processes}

    # --- endpoints -------------------------------------------------------------
    def specs(self, endpoints=ENDPOINTS, credentials: blog_client.Credentials | None = None,
              post_ids: list[int] | None = None, ai_title: str | None = None) -> list[RequestSpec]:
        """Request specs for the named endpoints. Without known post ids or a token
        they still run (against /post/1, without Authorization), so an unreachable
        or broken target shows up as error rates by kind, not as a blank."""
        result: list[RequestSpec] = []
        for name in endpoints:
            if name == "home":
                result.append(RequestSpec("home", "GET /", "GET", "/", [blog_api.HOME]))
            elif name == "post":
                paths = [blog_api.POST.format(id=i) for i in (post_ids or [1])[:50]]
                result.append(RequestSpec("post", "GET /post/[id]", "GET", "/post/[id]", paths))
            elif name == "ai":
                headers = {"Authorization": f"Bearer {credentials.token}"} if credentials else {}
                result.append(RequestSpec(
                    "ai", "POST /api/v1/generate (cached title)", "POST", blog_api.API_GENERATE,
                    [blog_api.API_GENERATE], json=blog_api.generate_body(ai_title or "Concurrency test title"),
                    headers=headers))
            elif name == "hello":
                result.append(RequestSpec("hello", "GET / (bare Flask)", "GET", "/", ["/"]))
            else:
                raise ValueError(f"unknown endpoint {name!r}; choose from {', '.join(ENDPOINTS)}")
        return result

    async def prepare(self, endpoints=ENDPOINTS, username=None, password=None) -> tuple[list, list[str]]:
        """Learn post ids and get a token as needed; problems become notes, not crashes."""
        notes: list[str] = []
        credentials = ids = None
        title = f"Concurrency test {blog_api.run_id()}"
        if "post" in endpoints:
            try:
                ids = await blog_client.post_ids(self.target, limit=50)
            except (blog_client.SetupError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError) as exc:
                notes.append(f"post ids unknown ({exc or type(exc).__name__}): requesting /post/1")
        if "ai" in endpoints:
            try:
                credentials = await blog_client.credentials(self.target, username, password)
            except blog_client.RefusedByLimits:
                raise  # every other sign-up or login would be refused too: blog-perf stops with the one line
            except (blog_client.SetupError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError) as exc:
                notes.append(f"no API token ({exc or type(exc).__name__}): AI requests go without one")
        return self.specs(endpoints, credentials, ids, title), notes

    # --- running ---------------------------------------------------------------
    def run(self, specs: list, record: dict) -> dict:
        """Run every level of every spec, filling ``record`` as it goes."""
        record.setdefault("parameters", self.parameters())
        record.setdefault("started_at", now_iso())
        endpoints = record.setdefault("endpoints", [])
        if self.client_processes > 1:
            context = multiprocessing.get_context("fork")
            self._stop_event = context.Event()
            self._pool = ProcessPoolExecutor(self.client_processes, mp_context=context,
                                             initializer=init_worker, initargs=(self._stop_event,))
        try:
            for spec in specs:
                entry = {"name": spec.name, "label": spec.label, "method": spec.method,
                         "route": spec.route,
                         "levels": []}
                endpoints.append(entry)
                self._warm_up(spec)
                for level in self.levels:
                    samples = Samples()
                    try:
                        self._run_level(spec, level, samples)
                    except KeyboardInterrupt:
                        entry["levels"].append(level_result(level, samples, self.duration, interrupted=True))
                        raise
                    result = level_result(level, samples, self.duration)
                    entry["levels"].append(result)
                    self.progress.line(_level_line(spec.name, result))
        finally:
            record["finished_at"] = now_iso()
            if self._pool is not None:
                self._stop_event.set()
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
        return record

    def _warm_up(self, spec: RequestSpec) -> None:
        """Each path once before measuring: levels measure the warm cache, not first renders."""
        async def visit_all():
            async with aiohttp.ClientSession(base_url=self.target,
                                             timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
                for path in spec.paths:
                    try:
                        async with session.request(spec.method, path, json=spec.json, headers=spec.headers,
                                                   allow_redirects=False) as response:
                            await response.read()
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        return  # an unreachable target: the levels will count its errors
        asyncio.run(visit_all())

    def _run_level(self, spec: RequestSpec, level: int, samples: Samples) -> None:
        label = f"{spec.name} c={level}"
        if self._pool is None:
            async def watch():
                while True:
                    done = len(samples.latencies_ms) + len(samples.error_kinds)
                    elapsed = time.time() - samples.started if samples.started else 0.0
                    self.progress.update(f"{label} {bar(elapsed, self.duration)} {done} requests, "
                                         f"{len(samples.error_kinds)} errors")
                    await asyncio.sleep(0.25)

            async def main():
                watcher = asyncio.create_task(watch())
                try:
                    await run_clients(self.target, spec, level, 0, self.duration, self.timeout, 0.0, samples,
                                       lambda: False)
                finally:
                    watcher.cancel()

            asyncio.run(main())
            return
        start_at = time.time() + 0.3  # every process starts its clients at the same moment
        shares = split_clients(level, self.client_processes)
        futures, offset = [], 0
        for share in shares:
            futures.append(self._pool.submit(worker_level, self.target, spec, share, offset, self.duration,
                                             self.timeout, start_at))
            offset += share
        try:
            while not all(f.done() for f in futures):
                self.progress.update(f"{label} {bar(time.time() - start_at, self.duration)}")
                time.sleep(0.25)
        except KeyboardInterrupt:
            self._stop_event.set()
            raise
        finally:
            for future in futures:
                try:
                    samples.merge(future.result(timeout=self.timeout + 5))
                except Exception as exc:  # a crashed client process is an error, not a lost level
                    samples.error_kinds.append(f"client:{type(exc).__name__}")


def _level_line(name: str, result: dict) -> str:
    latency = result["latency_ms"]
    return (f"  {name:<6} c={result['level']:<4} {result['attempts']:>7} req  "
            f"{stats.fmt_number(result['throughput_rps'], 0):>7} req/s  "
            f"p50 {stats.fmt_ms(latency['p50']):>9}  p95 {stats.fmt_ms(latency['p95']):>9}  "
            f"p99 {stats.fmt_ms(latency['p99']):>9}  errors {result['errors']}"
            + (f" {result['error_kinds']}" if result["errors"] else ""))


def run(target: str, endpoints=ENDPOINTS, levels=DEFAULT_LEVELS, duration: float = 3.0, timeout: float = 30.0,
        client_processes: int = 1, username=None, password=None, progress: Progress | None = None,
        record: dict | None = None) -> dict:
    """Prepare and run the concurrency test; returns (and fills) the record for results.json."""
    tester = ConcurrencyTester(target, levels, duration, timeout, client_processes, progress)
    record = {} if record is None else record
    record["parameters"] = {**tester.parameters(), "endpoints": list(endpoints)}
    specs, notes = asyncio.run(tester.prepare(endpoints, username, password))
    record["notes"] = notes
    for note in notes:
        tester.progress.line(f"note: {note}")
    return tester.run(specs, record)


