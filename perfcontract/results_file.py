"""results.json: the one record of a run. The report and ``compare`` read
only this file, so every figure they show can be traced to a raw sample here.

Layout::

    {"schema": "blog-perf/1", "kind": "all|locust|cache|concurrency|bench",
     "environment": {...}, "parameters": {...}, "started_at", "finished_at",
     "interrupted": bool, "runs": {"locust": {...}, "cache": {...}, "concurrency": {...}},
     "bench": {...}            # make bench only
     "comparison": {...}       # locust --baseline: perfcontract.baseline.record
     "thresholds": [...]}      # checks asked for on the command line
"""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

SCHEMA = "blog-perf/1"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment(target: str | None) -> dict:
    """Where and with what the run happened: enough to tell two runs apart."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "target": target,
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "load_average_at_start": list(load) if load else None,
        "memory_total_mb": _memory_total_mb(),
        "versions": {name: _version(name) for name in
                     ("aiblog", "locust", "aiohttp", "flask", "gunicorn", "gevent", "redis")},
    }


def _memory_total_mb() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def new_document(kind: str, target: str | None, parameters: dict) -> dict:
    return {
        "schema": SCHEMA,
        "kind": kind,
        "tool": {"name": "blog-perf", "version": _version("aiblog")},
        "environment": environment(target),
        "parameters": parameters,
        "started_at": now_iso(),
        "finished_at": None,
        "interrupted": False,
        "runs": {},
        "thresholds": [],
    }


def write(directory: str | Path, document: dict) -> Path:
    """Write results.json atomically (a reader never sees half a file)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / RESULTS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
    return path


class ResultsError(ValueError):
    """results.json is missing or not a blog-perf results file."""


def load(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.exists():
        raise ResultsError(f"{path} does not exist; run a blog-perf command with --out first")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        raise ResultsError(f"{path} is not a blog-perf results file (expected schema {SCHEMA!r})")
    return document
