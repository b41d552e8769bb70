"""Where ``make monitor``'s Prometheus finds what runs on free ports.

``make bench`` and ``blog-perf locust --metrics-port`` pick ports at run
time, so they announce their metrics endpoints as files in one folder, and
``scripts/monitor.py`` configures Prometheus's file-based discovery on it:
a run appears in Prometheus within seconds of starting and goes when its file
does. Each file is ``<job>-<pid>-<n>.json`` in Prometheus's file_sd format.
"""
from __future__ import annotations

import itertools
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .processes import REPO

DIR_ENV = "AIBLOG_MONITOR_TARGETS_DIR"
BLOG_JOB = "aiblog"  # the alert rules select up{job="aiblog"}
LOAD_TEST_JOB = "loadtest-runs"
JOBS = (BLOG_JOB, LOAD_TEST_JOB)
_numbers = itertools.count(1)


def targets_dir() -> Path:
    """``$AIBLOG_MONITOR_TARGETS_DIR``, or ``.run/monitor/targets`` in the checkout."""
    return Path(os.environ.get(DIR_ENV) or REPO / ".run" / "monitor" / "targets")


@contextmanager
def announced(job: str, target: str, labels: dict[str, str] | None = None) -> Iterator[Path | None]:
    """``target`` (host:port) is scraped as ``job`` while the block runs (None: no folder to write to)."""
    if job not in JOBS:
        raise ValueError(f"job must be one of {JOBS}, not {job!r}")
    path = targets_dir() / f"{job}-{os.getpid()}-{next(_numbers)}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".tmp")  # Prometheus never reads half a file
        scratch.write_text(json.dumps([{"targets": [target], "labels": labels or {}}]))
        os.replace(scratch, path)
    except OSError:  # a read-only checkout (a container): nothing to announce to
        path = None
    try:
        yield path
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
