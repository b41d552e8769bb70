"""``make bench``: the blog's speed on this machine, measured end to end.

Starts its own stack on free loopback ports (Postgres, Redis, the LLM
simulator at 2.5 s per answer, the blog under gunicorn with the production
config, the RQ worker, and a bare Flask "hello" app under the same gunicorn
config as the ceiling), seeds 1,000 posts, runs the suite and the extra
measurements behind the targets of issues 3 and 5, and writes results.json
and report.html to a folder it prints at the end (``BENCH_OUT=DIR`` or
``--out DIR``). Bounded by ``BENCH_BUDGET`` seconds (default 600): a phase
that no longer fits is skipped and says so. Traffic goes to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

from perfcontract import results_file

from . import blog_api, blog_client, cache_test, concurrency, locust_run, report, stats
from .bench_stack import Stack
from .progress import Progress

# Tuning of the benchmark stack (recorded in results.json). The per-user AI
# rate limit guards against abuse, not capacity, so it is lifted; 32 LLM slots
# per worker let 50 users really generate at once (the simulator takes them all).
BLOG_SETTINGS = {"AI_RATE_LIMIT": "100000 per minute", "LLM_MAX_INFLIGHT": "32"}
TIMED_LOG_FORMAT = "%(a)s|%(s)s|%(D)s"  # user agent | status | microseconds in the worker


@dataclass
class BenchSettings:
    """What ``make bench`` measures and how long. The defaults are the real
    benchmark (about 6-7 minutes); tests run a miniature with small values."""
    budget_s: float = 600.0
    levels: tuple[int, ...] = (1, 5, 10, 20, 50, 100, 200, 500)
    level_duration_s: float = 3.0
    client_processes: int = 2
    answer_seconds: float = 2.5
    seed_posts: int = 1000
    big_posts: int = 100_000
    scale_seconds: float = 6.0
    # Paced, below saturation: the p95 then shows what the posts table's size
    # costs, not how the load generator and the blog share two cores.
    scale_clients: int = 10
    scale_rate_rps: float = 400.0
    # Each size is measured this many times and the lowest p95 counts: noise
    # on a shared machine (a bulk load's write-back, a neighbour) only ever
    # adds latency, and one such pause moves a 2 ms p95 by half.
    scale_repeats: int = 3
    cold_renders: int = 40
    cache_titles: int = 5
    cache_repeats: int = 5
    cached_clients: int = 50
    cached_rate_rps: float = 200.0
    cached_seconds: float = 4.0
    flight_requests: int = 200
    readers: int = 20
    read_rate_rps: float = 200.0
    generators: int = 50
    read_seconds: float = 8.0
    # Locust: 500 users arrive at 10 a second (each logs in as it arrives, a
    # password hash: no faster than the login task's own rate at full load,
    # about 12/s), so 50 s of ramp and 70 s at 500 users; 1-3 s of think time.
    # They share 100 accounts created before the run.
    locust_users: int = 500
    locust_spawn_rate: float = 10.0
    locust_duration_s: float = 120.0
    locust_processes: int = 1
    locust_wait_min_s: float = 1.0
    locust_wait_max_s: float = 3.0
    locust_accounts: int = 100


class Budget:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed()


def _target(key, issue, name, goal, measured, unit, better, passed, detail="") -> dict:
    return {"key": key, "issue": issue, "name": name, "target": goal, "measured": measured, "unit": unit,
            "better": better, "passed": passed, "detail": detail}


def _at_most(value, limit):
    return None if value is None else value <= limit


def _at_least(value, limit):
    return None if value is None else value >= limit


class Bench:
    def __init__(self, out: Path, settings: BenchSettings | None = None, progress: Progress | None = None):
        self.out = out
        self.settings = settings or BenchSettings()
        self.budget = Budget(self.settings.budget_s)
        self.progress = progress or Progress()
        self.stack: Stack | None = None
        self.parameters = {**asdict(self.settings), "blog_settings": BLOG_SETTINGS}
        self.document = results_file.new_document("bench", None, self.parameters)
        self.bench = self.document["bench"] = {"parameters": {}, "phases": {}, "targets": []}

    # -- orchestration -------------------------------------------------------
    def phase(self, name: str, needs_seconds: float, action) -> None:
        """Run one measurement; a failure or a full time budget is recorded, not fatal."""
        record = self.bench["phases"].setdefault(name, {})
        if self.budget.left() < needs_seconds:
            record.update(status="skipped", reason=f"time budget: {self.budget.left():.0f} s left, needs ~{needs_seconds:.0f} s")
            self.progress.line(f"-- {name}: skipped ({record['reason']})")
            return
        self.progress.line(f"-- {name} ({self.budget.elapsed():.0f} s into the run)")
        began = time.monotonic()
        try:
            action()
            record["status"] = "done"
        except KeyboardInterrupt:
            record["status"] = "interrupted"
            raise
        except Exception as exc:  # one broken phase must not cost the others
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc()[-3000:])
            self.progress.line(f"   {name} failed: {type(exc).__name__}: {exc}")
        finally:
            record["seconds"] = round(time.monotonic() - began, 1)

    def run(self) -> int:
        code = 0
        try:
            self.stack = Stack(answer_seconds=self.settings.answer_seconds, posts=self.settings.seed_posts,
                               blog_settings=BLOG_SETTINGS,
                               log=lambda text: self.progress.line(f"   {text}"))
            self.progress.line("-- starting the stack")
            self.stack.start()
            self.document["environment"]["target"] = self.stack.blog.url
            self.bench["parameters"] = {
                "blog": self.stack.blog.url, "hello": self.stack.hello.url, "llm_simulator": self.stack.llm.url,
                "database": "PostgreSQL (throwaway)" if self.stack.postgres else "SQLite",
                "rq_worker": self.stack.worker is not None,
                "gunicorn_config": "aiblog.gunicorn_conf, BLOG_ENV=production",
                "settings": {k: v for k, v in self.stack.settings().items() if k not in ("SECRET_KEY",)},
            }
            self.bench["worker_rss_mb_at_start"] = self.stack.blog.worker_rss_mb()
            self.phase("bare Flask ceiling", 40, self.measure_ceiling)
            self.phase("concurrency", 100, self.measure_concurrency)
            self.phase("cache", 45, self.measure_cache)
            self.phase("single flight", 20, self.measure_single_flight)
            self.phase("reads under AI load", 30, self.measure_reads_under_ai_load)
            self.phase("Locust", self.settings.locust_duration_s + 40 + self.settings.locust_accounts / 20,
                       self.measure_locust)
            self.bench["worker_rss_mb"] = self.stack.blog.worker_rss_mb()
            self.phase(f"home page with {self.settings.seed_posts:,} vs {self.settings.big_posts:,} posts", 150,
                       self.measure_scale)
        except KeyboardInterrupt:
            self.document["interrupted"] = True
            code = 130
            self.progress.line("interrupted: writing what was measured")
        finally:
            if self.stack is not None:
                self.progress.line("-- stopping the stack")
                self.stack.stop()
                self.stack.keep_logs(self.out / "logs")  # gunicorn, simulator, Redis, Postgres: for diagnosis
                self.stack.cleanup()
            self.bench["duration_s"] = round(self.budget.elapsed(), 1)
            self.bench["targets"] = self.targets()
            self.document["finished_at"] = results_file.now_iso()
            path = results_file.write(self.out, self.document)
            html = report.write(self.out, self.document)
            self.print_targets()
            print(f"\nresults: {path}\nreport:  {html}\nfolder:  {self.out}")
        return code

    # -- measurements ------------------------------------------------------------
    def _concurrency(self, target: str, endpoints, levels, record: dict, duration: float | None = None) -> dict:
        return concurrency.run(target, endpoints, levels, duration or self.settings.level_duration_s, 30.0,
                               self.settings.client_processes,
                               progress=self.progress, record=record)

    def measure_ceiling(self) -> None:
        runs = self.document["runs"]
        runs["ceiling"] = {}
        tester = concurrency.ConcurrencyTester(self.stack.hello.url, self.settings.levels, self.settings.level_duration_s,
                                               30.0, self.settings.client_processes, self.progress)
        tester.run(tester.specs(["hello"]), runs["ceiling"])

    def measure_concurrency(self) -> None:
        runs = self.document["runs"]
        runs["concurrency"] = {}
        self._concurrency(self.stack.blog.url, ["home", "post", "ai"], self.settings.levels, runs["concurrency"])
        self._add_ceiling_ratios()

    def _add_ceiling_ratios(self) -> None:
        runs = self.document["runs"]
        hello = ((runs.get("ceiling") or {}).get("endpoints") or [{}])[0].get("levels", [])
        by_level = {lv["level"]: lv.get("throughput_rps") for lv in hello}
        peak = max((v for v in by_level.values() if v is not None), default=None)
        self.bench["ceiling_peak_rps"] = peak
        for endpoint in (runs.get("concurrency") or {}).get("endpoints", []):
            for level in endpoint.get("levels", []):
                level["ceiling_ratio"] = stats.ratio(level.get("throughput_rps"), by_level.get(level["level"]))
            rates = [lv["throughput_rps"] for lv in endpoint.get("levels", []) if lv.get("throughput_rps") is not None]
            endpoint["peak_ceiling_ratio"] = stats.ratio(max(rates, default=None), peak)

    def measure_cache(self) -> None:
        """On a second gunicorn of the same blog with an access log: its %(D)s is the server-side time."""
        log_path = self.stack.workdir / "timed-access.log"
        timed = self.stack.start_extra_blog("blog-timed", ["--access-logfile", str(log_path),
                                                           "--access-logformat", TIMED_LOG_FORMAT])
        try:
            record = self.document["runs"]["cache"] = {}
            cache_test.run(timed.url, titles=self.settings.cache_titles, repeats=self.settings.cache_repeats, timeout=60,
                           concurrent_clients=self.settings.cached_clients,
                           concurrent_duration=self.settings.cached_seconds, concurrent_rate=self.settings.cached_rate_rps, progress=self.progress, record=record, user_agent="blog-perf")
        finally:
            timed.stop()
        server = server_times(log_path)
        record["server_timing"] = {"source": "gunicorn access log %(D)s of a second blog instance, same config",
                                   "instance": timed.url}
        if record.get("concurrent") is not None:
            record["concurrent"]["server_ms"] = stats.summarize(server.get("blog-perf/cache-concurrent", []))
        record["server_cached_titles_ms"] = stats.summarize(server.get("blog-perf/cache-titles", []))

    def measure_single_flight(self) -> None:
        requests = self.settings.flight_requests
        target = self.stack.blog.url
        title = f"Single flight {blog_api.run_id()}: one answer for {requests} readers"

        async def burst():
            credentials = await blog_client.credentials(target)
            calls_before = self.stack.llm.stats()["generations"]
            outcomes = []
            async with blog_client.client_session(timeout=60) as session:
                async def one():
                    return await cache_test.timed_generation(session, target, credentials.token, title, 60)
                outcomes = await asyncio.gather(*(one() for _ in range(requests)))
            return outcomes, self.stack.llm.stats()["generations"] - calls_before

        outcomes, calls = asyncio.run(burst())
        ok = [o for o in outcomes if o["ok"]]
        self.bench["single_flight"] = {
            "requests": requests, "title": title, "ok": len(ok), "llm_calls": calls,
            "latency_ms": stats.summarize(o["ms"] for o in ok),
            "error_kinds": stats.count_kinds(o["error"] for o in outcomes if not o["ok"]),
            "cached_or_deduplicated": sum(1 for o in ok if o.get("cached") or o.get("deduplicated")),
        }
        self.progress.line(f"   {requests} identical requests: {len(ok)} ok, {calls} LLM call(s), "
                           f"p95 {stats.fmt_ms(self.bench['single_flight']['latency_ms']['p95'])}")

    @staticmethod
    async def _paced_reads(target: str, label: str, paths: list[str], clients: int, rate_rps: float,
                           seconds: float) -> dict:
        """``clients`` readers sharing ``rate_rps`` requests a second over ``paths``: one level's result."""
        spec = concurrency.RequestSpec("reads", label, "GET", label, paths, interval_s=clients / rate_rps)
        samples = concurrency.Samples()
        await concurrency._run_clients(target, spec, clients, 0, seconds, 30.0, 0.0, samples, lambda: False)
        result = concurrency.level_result(clients, samples, seconds)
        result.pop("latencies_ms")
        return result

    def measure_reads_under_ai_load(self) -> None:
        """Read p95 (home + posts, paced) alone, then while ``generators`` users generate uncached posts."""
        readers, read_rate = self.settings.readers, self.settings.read_rate_rps
        generators, seconds = self.settings.generators, self.settings.read_seconds
        target = self.stack.blog.url
        ids = asyncio.run(blog_client.post_ids(target, limit=50))
        paths = [blog_api.HOME] + [blog_api.POST.format(id=i) for i in ids[:20]]
        tokens = asyncio.run(_tokens(target, 5))  # a few accounts share the generators
        under = self.bench["reads_under_ai_load"] = {"readers": readers, "read_rate_rps": read_rate,
                                                     "seconds": seconds}

        async def measure(with_generators: bool) -> tuple[dict, dict]:
            stop = asyncio.Event()
            counts = {"completed": 0, "rejected_429": 0, "kinds": []}

            async def generator_user(index: int, session: aiohttp.ClientSession):
                token = tokens[index % len(tokens)]
                number = 0
                while not stop.is_set():
                    number += 1
                    title = f"Uncached under load {blog_api.run_id()} {index}-{number}"
                    outcome = await cache_test.timed_generation(session, target, token, title, 60)
                    if outcome["ok"]:
                        counts["completed"] += 1
                    elif outcome.get("status") == 429:
                        counts["rejected_429"] += 1
                        await asyncio.sleep(2)  # as Retry-After asks
                    else:
                        counts["kinds"].append(outcome["error"])

            async with blog_client.client_session(timeout=120) as session:
                workers = [asyncio.create_task(generator_user(i, session)) for i in range(generators)] \
                    if with_generators else []
                if workers:
                    await asyncio.sleep(1.0)  # every generator has its LLM call open before reads are timed
                result = await self._paced_reads(target, "GET / and /post/[id]", paths, readers, read_rate, seconds)
                stop.set()
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            return result, counts

        under["baseline"], _ = asyncio.run(measure(False))
        under["loaded"], counts = asyncio.run(measure(True))
        under["generators"] = {"users": generators, "completed": counts["completed"],
                               "rejected_429": counts["rejected_429"],
                               "error_kinds": stats.count_kinds(counts["kinds"])}
        self.progress.line(f"   read p95 normal {stats.fmt_ms(under['baseline']['latency_ms']['p95'])}, "
                           f"while generating {stats.fmt_ms(under['loaded']['latency_ms']['p95'])}")

    def measure_locust(self) -> None:
        record = self.document["runs"]["locust"] = {}
        locust_run.run(self.stack.blog.url, self.out, users=self.settings.locust_users,
                       spawn_rate=self.settings.locust_spawn_rate, duration=self.settings.locust_duration_s,
                       processes=self.settings.locust_processes, wait_min=self.settings.locust_wait_min_s,
                       wait_max=self.settings.locust_wait_max_s, accounts=self.settings.locust_accounts,
                       progress=self.progress, record=record)
        summary = record.get("summary") or {}
        summary["ceiling_ratio"] = stats.ratio(summary.get("rps"), self.bench.get("ceiling_peak_rps"))

    def measure_scale(self) -> None:
        """Home page p95 on two copies of the blog that differ only in their
        number of posts, measured in turns (1,000, 100,000, 1,000, ...): a
        slower spell of the machine then hits both, not one side."""
        cfg = self.settings
        scale = self.bench.setdefault("scale", {"runs": []})
        self.progress.line(f"   two copies of the blog: {cfg.seed_posts:,} and {cfg.big_posts:,} posts")
        sides, copies = [], []
        try:
            for number, (label, posts) in enumerate((("small", cfg.seed_posts), ("big", cfg.big_posts)), start=1):
                blog, total = self.stack.start_blog_copy(f"blog-{label}", posts, redis_db=number)
                copies.append(blog)
                sides.append((label, total, blog.url, [], []))
            for _, _, target, _, _ in sides:  # warm-up, untimed: cached reads, and renders after a write
                asyncio.run(self._paced_reads(target, "GET /", [blog_api.HOME], cfg.scale_clients,
                                              cfg.scale_rate_rps, 1.0))
                asyncio.run(_cold_home_renders(target, 5))
            for _ in range(max(1, cfg.scale_repeats)):
                for _, _, target, warm_runs, cold_runs in sides:
                    warm_runs.append(asyncio.run(self._paced_reads(target, "GET /", [blog_api.HOME], cfg.scale_clients,
                                                                   cfg.scale_rate_rps, cfg.scale_seconds)))
                    cold_runs.append(stats.summarize(asyncio.run(_cold_home_renders(target, cfg.cold_renders))))
        finally:
            for blog in copies:
                blog.stop()
        for label, posts, _, warm_runs, cold_runs in sides:
            warm = min(warm_runs, key=lambda run: _p95_or_inf(run["latency_ms"]))
            cold = min(cold_runs, key=_p95_or_inf)
            scale["runs"].append({"label": label, "posts": posts, "warm": warm["latency_ms"],
                                  "warm_clients": cfg.scale_clients, "warm_rate_rps": cfg.scale_rate_rps,
                                  "warm_throughput_rps": warm["throughput_rps"], "warm_error_rate": warm["error_rate"],
                                  "cold": cold, "repeats": len(warm_runs),
                                  "warm_p95_each_ms": [run["latency_ms"].get("p95") for run in warm_runs],
                                  "cold_p95_each_ms": [run.get("p95") for run in cold_runs]})
            self.progress.line(f"   {posts:,} posts: home p95 {stats.fmt_ms(warm['latency_ms']['p95'])} "
                               f"({cfg.scale_clients} clients, {cfg.scale_rate_rps:g} req/s; lowest of "
                               f"{len(warm_runs)}), uncached render p95 {stats.fmt_ms(cold['p95'])}")

    # -- verdicts ------------------------------------------------------------------
    def targets(self) -> list[dict]:
        cfg = self.settings
        flight_label = f"{cfg.flight_requests} identical uncached requests"
        runs = self.document["runs"]
        bench = self.bench
        targets = []
        endpoints = {e["name"]: e for e in (runs.get("concurrency") or {}).get("endpoints", [])}
        for name, label in (("home", "Home page"), ("post", "Post page")):
            endpoint = endpoints.get(name) or {}
            ratio = endpoint.get("peak_ceiling_ratio")
            targets.append(_target(f"{name}_ceiling_ratio", "5", f"{label} throughput vs bare Flask ceiling",
                                   "≥ 60 % of the ceiling", ratio, "ratio", "higher", _at_least(ratio, 0.6),
                                   f"peak {stats.fmt_number(_peak(endpoint), 0)} req/s vs ceiling "
                                   f"{stats.fmt_number(bench.get('ceiling_peak_rps'), 0)} req/s"))
        locust = (runs.get("locust") or {}).get("summary")
        failures = locust.get("failures") if locust else None
        targets.append(_target("locust_failures", "5", f"Locust {self.settings.locust_users} users: failed requests",
                               "0 (429 backpressure excluded)", failures, "count", "lower",
                               None if failures is None else failures == 0,
                               f"{(locust or {}).get('requests', 0):,} requests, "
                               f"{(locust or {}).get('backpressure_429', 0):,} deliberate 429s"))
        p95 = ((locust or {}).get("non_ai") or {}).get("p95_ms")
        targets.append(_target("locust_non_ai_p95_ms", "5", f"Locust {self.settings.locust_users} users: non-AI p95", "≤ 250 ms",
                               p95, "ms", "lower", _at_most(p95, 250)))
        home_500 = next((lv for lv in (endpoints.get("home") or {}).get("levels", []) if lv["level"] == 500), None)
        errors = home_500.get("errors") if home_500 else None
        targets.append(_target("home_c500_errors", "5", "Home page at 500 concurrent clients: errors", "0", errors,
                               "count", "lower", None if errors is None else errors == 0,
                               f"{home_500['attempts']:,} requests" if home_500 else ""))
        small, big = _scale_runs(bench)
        sizes = f"{cfg.big_posts:,} vs {cfg.seed_posts:,} posts"
        for kind, name in (("warm", f"Home page p95 (cached), {sizes}"),
                           ("cold", f"Home page p95 (uncached render), {sizes}")):
            before = (small or {}).get(kind, {}).get("p95")
            after = (big or {}).get(kind, {}).get("p95")
            change = None if before is None or after is None or before <= 0 else after / before - 1
            targets.append(_target(f"scale_{kind}_p95_change", "5", name, "within +20 %", change, "change", "lower",
                                   _at_most(change, 0.2),
                                   f"{stats.fmt_ms(before)} → {stats.fmt_ms(after)}"))
        rss = bench.get("worker_rss_mb") or {}
        worst = max(rss.values(), default=None)
        targets.append(_target("worker_rss_mb", "5", "gunicorn worker RSS after the run (largest worker)", "< 150 MB",
                               worst, "MB", "lower", None if worst is None else worst < 150,
                               ", ".join(f"pid {p}: {v} MB" for p, v in rss.items())))
        concurrent = (runs.get("cache") or {}).get("concurrent") or {}
        server = concurrent.get("server_ms") or {}
        client = concurrent.get("latency_ms") or {}
        for pct, limit in (("p50", 5), ("p99", 20)):
            targets.append(_target(f"cached_{pct}_ms", "3", f"Cached generation {pct}, server-side, {cfg.cached_clients} concurrent clients",
                                   f"≤ {limit} ms", server.get(pct), "ms", "lower", _at_most(server.get(pct), limit),
                                   f"client-side {stats.fmt_ms(client.get(pct))} at {concurrent.get('rate_rps') or '—'} req/s offered"))
        flight = bench.get("single_flight") or {}
        calls = flight.get("llm_calls")
        targets.append(_target("single_flight_llm_calls", "3", f"{flight_label}: LLM calls", "exactly 1",
                               calls, "calls", "lower", None if calls is None else calls == 1))
        ok = flight.get("ok")
        targets.append(_target("single_flight_ok", "3", f"{flight_label}: succeeded", f"all {cfg.flight_requests}", ok,
                               "count", "higher", None if ok is None else ok == flight.get("requests"),
                               ", ".join(f"{k}: {v}" for k, v in (flight.get("error_kinds") or {}).items())))
        p95 = (flight.get("latency_ms") or {}).get("p95")
        targets.append(_target("single_flight_p95_ms", "3", f"{flight_label}: p95", "≤ 3.5 s", p95,
                               "ms", "lower", _at_most(p95, 3500)))
        under = bench.get("reads_under_ai_load") or {}
        before = ((under.get("baseline") or {}).get("latency_ms") or {}).get("p95")
        after = ((under.get("loaded") or {}).get("latency_ms") or {}).get("p95")
        change = None if before is None or after is None or before <= 0 else after / before - 1
        targets.append(_target("reads_under_ai_p95_change", "3", f"Read p95 while {cfg.generators} users generate uncached posts",
                               "within +20 % of normal", change, "change", "lower", _at_most(change, 0.2),
                               f"{stats.fmt_ms(before)} → {stats.fmt_ms(after)}"))
        duration = bench.get("duration_s")
        targets.append(_target("bench_duration_s", "5", "make bench duration", f"≤ {cfg.budget_s:g} s", duration, "s", "lower",
                               _at_most(duration, cfg.budget_s)))
        return targets

    def print_targets(self) -> None:
        print("\nTargets")
        for t in self.bench["targets"]:
            verdict = {True: "pass", False: "FAIL", None: "not measured"}[t["passed"]]
            print(f"  [{verdict:^12}] issue {t['issue']}: {t['name']}: {report.fmt_value(t['measured'], t['unit'])} "
                  f"(goal {t['target']}){' — ' + t['detail'] if t.get('detail') else ''}")


def _peak(endpoint: dict) -> float | None:
    return max((lv["throughput_rps"] for lv in endpoint.get("levels", []) if lv.get("throughput_rps") is not None),
               default=None)


def _scale_runs(bench: dict) -> tuple[dict | None, dict | None]:
    runs = {r["label"]: r for r in (bench.get("scale") or {}).get("runs", [])}
    return runs.get("small"), runs.get("big")


async def _tokens(target: str, count: int) -> list[str]:
    return [(await blog_client.credentials(target)).token for _ in range(count)]


def _p95_or_inf(summary: dict) -> float:
    value = summary.get("p95")
    return float("inf") if value is None else value


async def _cold_home_renders(target: str, count: int) -> list[float]:
    """Time GET / right after a write invalidated the lists: the uncached render."""
    credentials = await blog_client.credentials(target)
    timings = []
    async with blog_client.client_session(timeout=30) as session:
        headers = {"Authorization": f"Bearer {credentials.token}"}
        for number in range(count):
            async with session.post(target + blog_api.API_POSTS, headers=headers,
                                    json={"title": f"Scale probe {number}", "body": "Invalidates the home page."}) as r:
                if r.status != 201:
                    raise RuntimeError(f"creating a probe post answered {r.status}")
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as anonymous:
                began = time.perf_counter()
                async with anonymous.get(target + blog_api.HOME) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"GET / answered {response.status}")
                timings.append(round((time.perf_counter() - began) * 1000, 3))
    return timings


LOG_LINE = re.compile(r"^(?P<agent>[^|]*)\|(?P<status>\d+)\|(?P<micros>\d+)$")


def server_times(path: Path) -> dict[str, list[float]]:
    """Milliseconds per user agent from a gunicorn access log in TIMED_LOG_FORMAT (successful requests)."""
    times: dict[str, list[float]] = {}
    if not path.exists():
        return times
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line.strip())
        if match and match["status"] == "200":
            times.setdefault(match["agent"], []).append(int(match["micros"]) / 1000)
    return times


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    defaults = BenchSettings()
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("BENCH_OUT"),
                        help="result folder (default: BENCH_OUT or bench-results/<time>)")
    parser.add_argument("--budget", type=float, default=float(os.environ.get("BENCH_BUDGET", defaults.budget_s)),
                        help="seconds the whole run may take (default BENCH_BUDGET or %(default)s)")
    parser.add_argument("--locust-users", type=int, default=defaults.locust_users)
    parser.add_argument("--locust-duration", type=float, default=defaults.locust_duration_s)
    parser.add_argument("--level-duration", type=float, default=defaults.level_duration_s)
    parser.add_argument("--big-posts", type=int, default=defaults.big_posts)
    args = parser.parse_args(argv)
    out = Path(args.out or Path("bench-results") / time.strftime("%Y%m%d-%H%M%S")).resolve()
    if out.exists() and any(out.iterdir()):
        print(f"make bench: {out} is not empty; choose another BENCH_OUT", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    print(f"make bench: results go to {out}", flush=True)
    # SIGTERM ends the run like Ctrl-C: results are written and every process is stopped.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    settings = BenchSettings(budget_s=args.budget, locust_users=args.locust_users,
                             locust_duration_s=args.locust_duration, level_duration_s=args.level_duration,
                             big_posts=args.big_posts)
    return Bench(out, settings).run()


if __name__ == "__main__":
    sys.exit(main())
