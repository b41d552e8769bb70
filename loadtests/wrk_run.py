"""wrk (the Debian package): a C load generator, so a page's throughput and
tail are the server's, not a Python client's. ``make bench`` runs it against
the bare hello ceiling and the blog's cached anonymous pages with the same
connections, as a browser asks for them (``Accept-Encoding: gzip, deflate, br, zstd``).

Its report is text; only the figures below are read from it, from at most
``MAX_OUTPUT`` bytes.
"""
from __future__ import annotations

import re
import shutil
import subprocess

from .stats import ratio

MAX_OUTPUT = 64 * 1024
BROWSER_HEADERS = ("Accept-Encoding: gzip, deflate, br, zstd",)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_PERCENTILE = re.compile(r"^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", re.M)
_RATE = re.compile(r"^Requests/sec:\s+([0-9.]+)\s*$", re.M)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)\s*$", re.M)
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise WrkMissing("wrk is not installed: apt-get install wrk (make bench installs it as root)")
    return path


def parse(output: str) -> dict:
    """The figures of one ``wrk --latency`` report. Raises ValueError if it holds none."""
    output = output[:MAX_OUTPUT]
    rate, total = _RATE.search(output), _TOTAL.search(output)
    if rate is None or total is None:
        raise ValueError(f"not a wrk report: {output[:300]!r}")
    percentiles = {f"p{p}": round(float(value) * _UNITS_MS[unit], 3) for p, value, unit in _PERCENTILE.findall(output)}
    non_2xx = _NON_2XX.search(output)
    sockets = _SOCKET_ERRORS.search(output)
    return {
        "requests": int(total[1]),
        "throughput_rps": round(float(rate[1]), 1),
        "latency_ms": percentiles,
        "non_2xx_3xx": int(non_2xx[1]) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in sockets.groups()) if sockets else 0,
    }


def run(url: str, connections: int, seconds: float, threads: int = 2,
        headers: tuple[str, ...] = BROWSER_HEADERS) -> dict:
    """One wrk run against ``url`` (loopback only: the bench's own stack)."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"wrk runs only against this machine's stack, not {url}")
    command = [wrk_path(), f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--latency", *(arg for header in headers for arg in ("-H", header)), url]
    done = subprocess.run(command, capture_output=True, timeout=seconds + 60)
    output = done.stdout[:MAX_OUTPUT].decode("utf-8", "replace")
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr[:500].decode('utf-8', 'replace')}")
    return {"url": url, "connections": connections, "seconds": seconds, "threads": min(threads, connections),
            **parse(output)}


def compare(result: dict, ceiling: dict) -> dict:
    """A page's run next to the ceiling's: throughput share and p99 multiple."""
    return {"ceiling_ratio": ratio(result.get("throughput_rps"), ceiling.get("throughput_rps")),
            "p99_vs_ceiling": ratio((result.get("latency_ms") or {}).get("p99"),
                                    (ceiling.get("latency_ms") or {}).get("p99"))}
