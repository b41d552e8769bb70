"""Who used the machine's CPU during a measurement: the blog, the LLM
simulator, the load generator, Redis, Postgres. On a 2-core machine they
all share the cores, so a latency figure means little without this split
(the performance issue asks for the simulator's and the generator's shares).

Each part is a function giving its CPU seconds so far; a share is its CPU
time over the wall time times the cores (1.0 = every core, all the time).
On a virtual machine the hypervisor may also run other guests on our cores
(steal time, ``/proc/stat``): that share is recorded too, since a phase that
lost a fifth of its CPU to a neighbour reads slower for no fault of the code.
"""
from __future__ import annotations

import os
import resource
import time
from typing import Callable

from devstack.processes import children_of, cpu_seconds


_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_STEAL_FIELD = 8  # cpu user nice system idle iowait irq softirq steal ... (proc(5))


def stolen_seconds() -> float | None:
    """CPU seconds the hypervisor gave other guests, summed over the cores; None where unknown."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline(4096).split()
        return int(fields[_STEAL_FIELD]) / _TICKS_PER_SECOND if fields[:1] == [b"cpu"] else None
    except (OSError, IndexError, ValueError):
        return None


def own_cpu_seconds() -> float:
    """This process's CPU time (the bench's own clients run here)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def waited_children_cpu_seconds() -> float:
    """CPU time of this process's children that have exited and been waited for (a Locust run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_tree(pid: int) -> Callable[[], float]:
    """A process and its children (Postgres's backends, gunicorn's workers)."""
    return lambda: cpu_seconds(pid) + sum(cpu_seconds(child) for child in children_of(pid))


def stack_parts(stack) -> dict[str, Callable[[], float]]:
    """The parts of a ``bench_stack.Stack`` that are running, by name."""
    parts = {"blog": stack.blog.cpu_seconds, "bench clients (this process)": own_cpu_seconds}
    if stack.ai_pool is not None:
        parts["blog AI pool"] = stack.ai_pool.cpu_seconds
    for name, service in (("LLM simulator", stack.llm), ("Redis", stack.redis), ("RQ worker", stack.worker)):
        process = getattr(service, "process", None)
        if process is not None:
            parts[name] = process_tree(process.pid)
    postmaster = stack.postgres.pid() if stack.postgres else None
    if postmaster is not None:
        parts["Postgres"] = process_tree(postmaster)
    return parts


class CpuShares:
    """``with CpuShares(parts) as shares: ...``; then ``shares.result``."""

    def __init__(self, parts: dict[str, Callable[[], float]], cores: int | None = None):
        self.parts = parts
        self.cores = cores or os.cpu_count() or 1
        self.result: dict = {}

    def __enter__(self) -> "CpuShares":
        self._began = time.monotonic()
        self._before = {name: read() for name, read in self.parts.items()}
        self._stolen_before = stolen_seconds()
        return self

    def __exit__(self, *exc) -> None:
        self._wall = time.monotonic() - self._began
        self._used = {name: max(0.0, read() - self._before[name]) for name, read in self.parts.items()}
        stolen_after = stolen_seconds()
        self._stolen = (None if stolen_after is None or self._stolen_before is None
                        else max(0.0, stolen_after - self._stolen_before))
        self._summarise()

    def add(self, name: str, cpu_s: float | None) -> None:
        """A part measured another way over the same time (a process that has exited since)."""
        self._used[name] = max(0.0, cpu_s or 0.0)
        self._summarise()

    def _summarise(self) -> None:
        capacity = self._wall * self.cores
        self.result = {
            "wall_s": round(self._wall, 2), "cores": self.cores,
            "parts": {name: {"cpu_s": round(cpu, 2), "share": round(cpu / capacity, 4) if capacity else None}
                      for name, cpu in self._used.items()},
            "stolen_share": round(self._stolen / capacity, 4) if capacity and self._stolen is not None else None,
            "idle_share": round(max(0.0, 1 - (sum(self._used.values()) + (self._stolen or 0.0)) / capacity), 4)
            if capacity else None,
        }
