"""The clients of one concurrency level: N clients sending one endpoint's
requests back to back (or paced) until a deadline, in this process or in
worker processes, and what they record (``Samples``: every latency, every
error by kind). ``level_result`` turns a level's samples into its figures.
"""
from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field

import aiohttp

from . import stats


@dataclass
class RequestSpec:
    """One endpoint to hit. ``paths`` are used round-robin (several post ids)."""
    name: str
    label: str
    method: str
    route: str          # the route template, e.g. /post/[id]
    paths: list[str]
    json: dict | None = None
    headers: dict = field(default_factory=dict)
    ok_statuses: tuple[int, ...] = (200,)
    interval_s: float = 0.0  # 0: back to back; else each client starts one request per interval (paced)


@dataclass
class Samples:
    """Raw results of one level, filled while it runs (so Ctrl-C keeps them)."""
    latencies_ms: list[float] = field(default_factory=list)
    error_kinds: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0

    def merge(self, other: "Samples") -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.error_kinds.extend(other.error_kinds)
        self.started = min(self.started, other.started) if self.started else other.started
        self.finished = max(self.finished, other.finished)


async def _client(session: aiohttp.ClientSession, spec: RequestSpec, offset: int, deadline: float,
                  samples: Samples, stop) -> None:
    index = offset
    # Paced clients start at random phases so they do not fire in lockstep.
    next_due = time.time() + (random.uniform(0, spec.interval_s) if spec.interval_s else 0.0)
    while True:
        if spec.interval_s:
            await asyncio.sleep(max(0.0, next_due - time.time()))
            next_due += spec.interval_s
        path = spec.paths[index % len(spec.paths)]
        index += 1
        began = time.perf_counter()
        try:
            async with session.request(spec.method, path, json=spec.json, headers=spec.headers,
                                       allow_redirects=False) as response:
                await response.read()
                status = response.status
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is an error sample, by kind
            samples.error_kinds.append(stats.error_kind(exc))
        else:
            if status in spec.ok_statuses:
                samples.latencies_ms.append(round((time.perf_counter() - began) * 1000, 3))
            else:
                samples.error_kinds.append(stats.error_kind(status=status))
        samples.finished = time.time()
        # Each client sends at least one request, then stops at the deadline.
        if time.time() >= deadline or stop() or (spec.interval_s and next_due >= deadline):
            return


async def run_clients(target: str, spec: RequestSpec, clients: int, offset: int, duration: float,
                       timeout: float, start_at: float, samples: Samples, stop) -> Samples:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    samples.started = time.time()
    deadline = samples.started + duration
    # A fresh pool per level: connection setup at this concurrency is part of the measurement.
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(base_url=target, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        await asyncio.gather(*(_client(session, spec, offset + i, deadline, samples, stop)
                               for i in range(clients)))
    return samples


# --- worker processes (client_processes > 1) ---------------------------------
_stop_event = None


def init_worker(event) -> None:
    global _stop_event
    _stop_event = event
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop


def worker_level(target: str, spec: RequestSpec, clients: int, offset: int, duration: float,
                  timeout: float, start_at: float) -> Samples:
    samples = Samples()
    asyncio.run(run_clients(target, spec, clients, offset, duration, timeout, start_at, samples,
                             stop=_stop_event.is_set))
    return samples


def split_clients(total: int, parts: int) -> list[int]:
    parts = min(parts, total)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def level_result(level: int, samples: Samples, duration: float, interrupted: bool = False) -> dict:
    ok = len(samples.latencies_ms)
    errors = len(samples.error_kinds)
    attempts = ok + errors
    elapsed = (samples.finished - samples.started) if samples.started and samples.finished else None
    return {
        "level": level,
        "requested_duration_s": duration,
        "elapsed_s": round(elapsed, 4) if elapsed is not None else None,
        "attempts": attempts,
        "ok": ok,
        "errors": errors,
        "error_kinds": stats.count_kinds(samples.error_kinds),
        "error_rate": stats.error_rate(errors, attempts),
        "throughput_rps": stats.ratio(ok, elapsed),
        "latency_ms": stats.summarize(samples.latencies_ms),
        "latencies_ms": samples.latencies_ms,
        "interrupted": interrupted,
    }
