"""What ``make bench`` measures, phase by phase (``Bench`` runs them): the
bare Flask ceiling, concurrency, the cache, single flight, reads while users
generate, Locust, capacity (the seed's mix stepped up), and the home page at two sizes. Each phase writes its
figures into the run's document (``runs``) or the bench's record (``bench``).
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp

from devstack import REPO, free_port
from perfcontract import capacity

from . import blog_api, blog_client, cache_test, cpu_shares, concurrency, concurrency_clients, live_metrics, locust_run, stats, wrk_run

TIMED_LOG_FORMAT = "%(a)s|%(s)s|%(D)s"  # user agent | status | microseconds in the worker


class BenchMeasurements:
    """The phases of ``bench.Bench``, which gives ``stack``, ``settings``,
    ``document``, ``bench``, ``out`` and ``progress``."""

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

    def measure_wrk(self) -> None:
        """wrk with ``wrk_connections`` connections: the bare hello, then the cached anonymous home
        and post pages, each after a short warm-up (the first requests fill the page cache)."""
        cfg = self.settings
        post_id = asyncio.run(blog_client.post_ids(self.stack.blog.url, limit=1))[0]
        targets = {"hello": self.stack.hello.url + "/", "home": self.stack.blog.url + blog_api.HOME,
                   "post": self.stack.blog.url + blog_api.POST.format(id=post_id)}
        record = self.bench["wrk"] = {"connections": cfg.wrk_connections, "seconds": cfg.wrk_seconds,
                                      "headers": list(wrk_run.BROWSER_HEADERS), "runs": {}}
        for name, url in targets.items():
            wrk_run.run(url, cfg.wrk_connections, 1)
            result = record["runs"][name] = wrk_run.run(url, cfg.wrk_connections, cfg.wrk_seconds)
            if name != "hello":
                result.update(wrk_run.compare(result, record["runs"]["hello"]))
            self.progress.line(f"   {name}: {result['throughput_rps']:,.0f} req/s, p99 "
                               f"{stats.fmt_ms(result['latency_ms'].get('p99'))}")

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
        spec = concurrency_clients.RequestSpec("reads", label, "GET", label, paths, interval_s=clients / rate_rps)
        samples = concurrency_clients.Samples()
        await concurrency_clients.run_clients(target, spec, clients, 0, seconds, 30.0, 0.0, samples, lambda: False)
        result = concurrency_clients.level_result(clients, samples, seconds)
        result.pop("latencies_ms")
        return result

    def measure_reads_under_ai_load(self) -> None:
        """Read p95 (home + posts, paced) alone; while ``generators`` users generate uncached posts
        through the AI pool, a gunicorn of their own as the chart routes them (``aiPool``); while
        they generate through the gunicorn that serves the reads (one pool, as without an ingress);
        and beside as many streams read straight from the LLM simulator (its own cost, no blog).
        The AI load runs in a process of its own (``ai_load.py``): its client work never delays
        the reads' client."""
        readers, read_rate = self.settings.readers, self.settings.read_rate_rps
        generators, seconds = self.settings.generators, self.settings.read_seconds
        target = self.stack.blog.url
        ids = asyncio.run(blog_client.post_ids(target, limit=50))
        paths = [blog_api.HOME] + [blog_api.POST.format(id=i) for i in ids[:20]]
        under = self.bench["reads_under_ai_load"] = {"readers": readers, "read_rate_rps": read_rate,
                                                     "seconds": seconds}
        ramp_s = 1.5  # every AI client has its call open before reads are timed
        # The AI pool: the same blog, same database and Redis, in processes of its own (charts/blog aiPool).
        ai_pool = self.stack.ai_pool or self.stack.start_ai_pool()

        def measure(kind: str | None, load_target: str = "") -> tuple[dict, dict]:
            load = None if kind is None else subprocess.Popen(
                [sys.executable, "-m", "loadtests.ai_load", kind, load_target, "--users", str(generators),
                 "--seconds", str(seconds + ramp_s)], cwd=REPO, stdout=subprocess.PIPE, text=True)
            try:
                if load is not None:
                    time.sleep(ramp_s)
                parts = {**cpu_shares.stack_parts(self.stack),
                         "AI load clients (own process)": cpu_shares.waited_children_cpu_seconds}
                counts = {}
                with cpu_shares.CpuShares(parts) as cpu:
                    result = asyncio.run(self._paced_reads(target, "GET / and /post/[id]", paths, readers,
                                                           read_rate, seconds))
                    if load is not None:  # waited for inside: its CPU time is counted once it has exited
                        output, _ = load.communicate(timeout=120)
                        last = output.strip().splitlines()[-1] if output.strip() else "{}"
                        counts = json.loads(last[:10_000])
                result["cpu"] = cpu.result
                return result, counts
            finally:
                if load is not None and load.poll() is None:
                    load.kill()
                    load.wait()

        # Untimed: every page read below is in the cache first (as it is while the blog serves).
        asyncio.run(self._paced_reads(target, "warm-up", paths, readers, read_rate, 1.0))
        # Rounds of the four phases, interleaved so that a slow minute of the machine touches
        # each phase alike; each phase is judged on its median round (by p95).
        phases = (("baseline", None, ""), ("loaded", "blog", ai_pool.url), ("loaded_one_pool", "blog", target),
                  ("simulator_only", "simulator", self.stack.llm.url))
        rounds: dict[str, list[tuple[dict, dict]]] = {key: [] for key, _, _ in phases}
        for _ in range(self.settings.read_rounds):
            for key, kind, load_target in phases:
                rounds[key].append(measure(kind, load_target))
        for key, measured in rounds.items():
            ordered = sorted(measured, key=lambda pair: pair[0]["latency_ms"]["p95"] or 0.0)
            under[key] = dict(ordered[(len(ordered) - 1) // 2][0])
            under[key]["p95_rounds_ms"] = [result["latency_ms"]["p95"] for result, _ in measured]
        under["rounds"] = self.settings.read_rounds
        under["simulator_only"]["streams_completed"] = sum(c.get("completed", 0) for _, c in rounds["simulator_only"])
        for key, phase in (("generators", "loaded"), ("generators_one_pool", "loaded_one_pool")):
            outcomes = [counts for _, counts in rounds[phase]]
            kinds = sum((Counter(o.get("error_kinds") or {}) for o in outcomes), Counter())
            under[key] = {"users": generators, "completed": sum(o.get("completed", 0) for o in outcomes),
                          "rejected_429": sum(o.get("rejected_429", 0) for o in outcomes),
                          "error_kinds": dict(sorted(kinds.items()))}
        self.progress.line(f"   read p95 (median of {self.settings.read_rounds}) normal "
                           f"{stats.fmt_ms(under['baseline']['latency_ms']['p95'])}, "
                           f"while generating on the AI pool {stats.fmt_ms(under['loaded']['latency_ms']['p95'])}, "
                           f"on the same gunicorn {stats.fmt_ms(under['loaded_one_pool']['latency_ms']['p95'])}, "
                           f"beside the simulator alone {stats.fmt_ms(under['simulator_only']['latency_ms']['p95'])}")

    def measure_locust(self) -> None:
        record = self.document["runs"]["locust"] = {}
        with cpu_shares.CpuShares(cpu_shares.stack_parts(self.stack)) as cpu:
            self._run_locust(record)
        # Locust's processes, sampled while they ran (locust_run): its own cost on these cores.
        cpu.add("Locust (load generator)", record.get("generator_cpu_s"))
        self.bench["locust_cpu"] = cpu.result
        generator = cpu.result["parts"]["Locust (load generator)"]
        self.progress.line(f"   Locust's own CPU: {generator['cpu_s']} s, {generator['share']:.0%} of the machine")

    def _run_locust(self, record: dict) -> None:
        locust_run.run(self.stack.blog.url, self.out, users=self.settings.locust_users,
                       spawn_rate=self.settings.locust_spawn_rate, duration=self.settings.locust_duration_s,
                       processes=self.settings.locust_processes, wait_min=self.settings.locust_wait_min_s,
                       wait_max=self.settings.locust_wait_max_s, accounts=self.settings.locust_accounts,
                       progress=self.progress, record=record,
                       # Live figures on a free port, announced to make monitor (locust_run._announced).
                       metrics=live_metrics.LiveMetrics(free_port(), run_name="bench"))
        summary = record.get("summary") or {}
        summary["ceiling_ratio"] = stats.ratio(summary.get("rps"), self.bench.get("ceiling_peak_rps"))

    def measure_capacity(self) -> None:
        """The seed's mix stepped up: the most users within the SLO, the knee, next to the ceiling."""
        cfg = self.settings
        record: dict = {}
        locust_run.run(self.stack.blog.url, self.out / "capacity", spawn_rate=cfg.locust_spawn_rate,
                       wait_min=cfg.locust_wait_min_s, wait_max=cfg.locust_wait_max_s, accounts=cfg.locust_accounts,
                       progress=self.progress, record=record, steps=capacity.Profile.parse(cfg.capacity_steps))
        if record.get("error"):
            raise RuntimeError(record["error"])
        analysis = capacity.analyse(capacity.steps_from((record.get("summary") or {}).get("steps")),
                                    capacity.SLO(cfg.capacity_slo_p95_ms, cfg.capacity_slo_error_rate))
        ceiling = self.bench.get("ceiling_peak_rps")
        self.bench["capacity"] = {**analysis, "profile": cfg.capacity_steps, "ceiling_peak_rps": ceiling,
                                  "capacity_ceiling_ratio": stats.ratio(analysis["capacity_rps"], ceiling),
                                  "failures": (record.get("summary") or {}).get("failures")}

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
