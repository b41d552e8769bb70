"""Cache tester: for N titles never generated before, time the first
(uncached) generation and the following (cached) ones through
``POST /api/v1/generate`` in sync mode; then the cached path at 50
concurrent clients.

A figure that cannot be measured (every call failed, nothing to divide by)
is None, shown as "—" — never a 0 or negative number posing as a result.
"""
from __future__ import annotations

import asyncio
import re
import time

import aiohttp

from perfcontract.results_file import now_iso

from . import blog_api, blog_client, stats
from .concurrency import ConcurrencyTester
from .concurrency_clients import RequestSpec
from .progress import Progress, bar

SERVER_TIMING_RE = re.compile(r"dur=([0-9.]+)")


def _server_ms(response: aiohttp.ClientResponse) -> float | None:
    """Server-side time if the blog sends a Server-Timing header (sum of its durations)."""
    header = response.headers.get("Server-Timing")
    if not header:
        return None
    durations = [float(v) for v in SERVER_TIMING_RE.findall(header)]
    return sum(durations) if durations else None


async def timed_generation(session: aiohttp.ClientSession, target: str, token: str, title: str, timeout: float) -> dict:
    """One timed sync generation: {ms, ok, cached, status, error, content_digest, server_ms}."""
    began = time.perf_counter()
    try:
        async with session.post(target + blog_api.API_GENERATE, json=blog_api.generate_body(title),
                                headers={"Authorization": f"Bearer {token}"},
                                timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            elapsed = (time.perf_counter() - began) * 1000
            if response.status != 200:
                return {"ok": False, "ms": round(elapsed, 3), "status": response.status,
                        "error": stats.error_kind(status=response.status)}
            data = await response.json(content_type=None)
            content = data.get("content") if isinstance(data, dict) else None
            return {"ok": isinstance(content, str), "ms": round(elapsed, 3), "status": 200,
                    "cached": bool(data.get("cached")), "deduplicated": bool(data.get("deduplicated")),
                    "content_hash": hash(content) if isinstance(content, str) else None,
                    "server_ms": _server_ms(response), "bytes": len(body),
                    "error": None if isinstance(content, str) else "bad-json"}
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # counted as a failure of its kind
        return {"ok": False, "ms": None, "status": None, "error": stats.error_kind(exc)}


def _summary(calls: list[dict]) -> dict:
    return stats.summarize(c["ms"] for c in calls if c["ok"])


def summarize_titles(titles: list[dict]) -> dict:
    """Means, percentiles and speed-ups of every title's uncached and cached calls."""
    first = [t["uncached"] for t in titles if t.get("uncached")]
    following = [c for t in titles for c in t.get("cached", [])]
    attempts = len(first) + len(following)
    failures = sum(1 for c in first + following if not c["ok"])
    uncached, cached = _summary(first), _summary(following)
    not_from_cache = sum(1 for c in following if c["ok"] and not c.get("cached"))
    mismatched = sum(1 for t in titles if t.get("content_matches") is False)
    return {
        "uncached_ms": uncached,
        "cached_ms": cached,
        "speedup_mean": stats.ratio(uncached["mean"], cached["mean"]),
        "speedup_p50": stats.ratio(uncached["p50"], cached["p50"]),
        "attempts": attempts,
        "failures": failures,
        "failure_rate": stats.error_rate(failures, attempts),
        "error_kinds": stats.count_kinds(c["error"] for c in first + following if not c["ok"]),
        "cached_calls_not_from_cache": not_from_cache,
        "titles_with_different_content": mismatched,
    }


class CacheTester:
    def __init__(self, target: str, titles: int = 5, repeats: int = 5, timeout: float = 60.0,
                 concurrent_clients: int = 50, concurrent_duration: float = 3.0, concurrent_rate: float | None = 200.0,
                 progress: Progress | None = None, user_agent: str = "blog-perf"):
        if titles < 1 or repeats < 1:
            raise ValueError("--titles and --repeats must be at least 1")
        self.target = target.rstrip("/")
        self.titles = titles
        self.repeats = repeats
        self.timeout = timeout
        self.concurrent_clients = concurrent_clients
        self.concurrent_duration = concurrent_duration
        self.concurrent_rate = concurrent_rate
        self.progress = progress or Progress(quiet=True)
        self.user_agent = user_agent

    def parameters(self) -> dict:
        return {"titles": self.titles, "repeats": self.repeats, "timeout_s": self.timeout,
                "concurrent_clients": self.concurrent_clients, "concurrent_duration_s": self.concurrent_duration,
                "concurrent_rate_rps": self.concurrent_rate}

    async def run_titles(self, token: str, record: dict) -> None:
        run = blog_api.run_id()
        record["run_id"] = run
        titles = record.setdefault("titles", [])
        total = self.titles * (1 + self.repeats)
        async with blog_client.client_session(timeout=self.timeout) as session:
            session.headers["User-Agent"] = self.user_agent + "/cache-titles"
            for index, title in enumerate(blog_api.fresh_titles(self.titles, run)):
                entry = {"title": title, "uncached": None, "cached": []}
                titles.append(entry)
                self.progress.update(f"cache: title {index + 1}/{self.titles} uncached "
                                     f"{bar(index * (1 + self.repeats), total)}")
                entry["uncached"] = await timed_generation(session, self.target, token, title, self.timeout)
                for repeat in range(self.repeats):
                    self.progress.update(f"cache: title {index + 1}/{self.titles} cached {repeat + 1}/{self.repeats} "
                                         f"{bar(index * (1 + self.repeats) + 1 + repeat, total)}")
                    entry["cached"].append(await timed_generation(session, self.target, token, title, self.timeout))
                hashes = {c["content_hash"] for c in [entry["uncached"], *entry["cached"]] if c["ok"]}
                entry["content_matches"] = (len(hashes) == 1) if hashes else None
                self.progress.line(_title_line(entry))
        for entry in titles:  # the hash only served the comparison above
            for call in [entry["uncached"], *entry["cached"]]:
                if call:
                    call.pop("content_hash", None)

    def run_concurrent(self, token: str, title: str, record: dict) -> None:
        """The cached path at ``concurrent_clients`` clients (the AI target: p50 <= 5 ms, p99 <= 20 ms)."""
        interval = (self.concurrent_clients / self.concurrent_rate) if self.concurrent_rate else 0.0
        spec = RequestSpec("ai-cached", f"POST /api/v1/generate (cached) x{self.concurrent_clients}", "POST",
                           blog_api.API_GENERATE, [blog_api.API_GENERATE], json=blog_api.generate_body(title),
                           headers={"Authorization": f"Bearer {token}",
                                    "User-Agent": self.user_agent + "/cache-concurrent"},
                           interval_s=interval)
        tester = ConcurrencyTester(self.target, [self.concurrent_clients], self.concurrent_duration, self.timeout,
                                   progress=self.progress)
        nested: dict = {}
        try:
            tester.run([spec], nested)
        finally:
            levels = nested.get("endpoints", [{}])[0].get("levels", [])
            record["concurrent"] = {"clients": self.concurrent_clients, "title": title,
                                    "rate_rps": self.concurrent_rate, "interval_s": interval,
                                    **(levels[0] if levels else {})}


def _title_line(entry: dict) -> str:
    first = entry["uncached"]
    cached = [c["ms"] for c in entry["cached"] if c["ok"]]
    failures = sum(1 for c in [first, *entry["cached"]] if not c["ok"])
    mean_cached = sum(cached) / len(cached) if cached else None
    return (f"  uncached {stats.fmt_ms(first['ms'] if first['ok'] else None):>9}  cached mean "
            f"{stats.fmt_ms(mean_cached):>9}  failures {failures}  {entry['title']}")


def run(target: str, titles: int = 5, repeats: int = 5, timeout: float = 60.0, concurrent_clients: int = 50,
        concurrent_duration: float = 3.0, concurrent_rate: float | None = 200.0, username=None, password=None,
        progress: Progress | None = None, record: dict | None = None, user_agent: str = "blog-perf") -> dict:
    tester = CacheTester(target, titles, repeats, timeout, concurrent_clients, concurrent_duration,
                         concurrent_rate, progress, user_agent)
    record = {} if record is None else record
    record.update(parameters=tester.parameters(), started_at=now_iso(), notes=[])
    try:
        try:
            credentials = asyncio.run(blog_client.credentials(tester.target, username, password))
        except blog_client.RefusedByLimits:
            raise  # every other sign-up or login would be refused too: blog-perf stops with the one line
        except (blog_client.SetupError, aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError) as exc:
            # No token: every planned call is a failure of this kind, so the report shows a rate, not a blank.
            kind = exc.kind if isinstance(exc, blog_client.SetupError) else stats.error_kind(exc)
            record["notes"].append(f"no API token: {exc or type(exc).__name__}")
            tester.progress.line(f"cache: cannot get an API token: {exc or type(exc).__name__}")
            failed = {"ok": False, "ms": None, "status": None, "error": kind}
            record["titles"] = [{"title": t, "uncached": dict(failed), "cached": [dict(failed)] * repeats,
                                 "content_matches": None} for t in blog_api.fresh_titles(titles, "none")]
            return record
        asyncio.run(tester.run_titles(credentials.token, record))
        warm = [t["title"] for t in record["titles"] if t["uncached"]["ok"]]
        if concurrent_clients > 0:
            tester.run_concurrent(credentials.token, warm[0] if warm else record["titles"][0]["title"], record)
    finally:
        record["summary"] = summarize_titles(record.get("titles", []))
        record["finished_at"] = now_iso()
    return record
