"""Run the Locust scenario headless in a child process and collect its figures.

Locust runs as its own process (gevent monkey-patching must not leak into the
asyncio testers); the scenario writes history.jsonl and summary.json (see
locustfile.py), which this module tails for the progress line and reads at
the end. ``processes > 1`` uses Locust's ``--processes`` (a master plus forked
workers) for more load than one core generates.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import blog_api, stats
from .progress import Progress, bar
from .results import now_iso

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def _read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pass  # a line being written right now
    return lines


def run(target: str, out_dir: str | Path, users: int = 50, spawn_rate: float = 10.0, duration: float = 30.0,
        processes: int = 1, wait_min: float = 1.0, wait_max: float = 3.0, progress: Progress | None = None,
        record: dict | None = None, extra_env: dict | None = None, weights: dict | None = None) -> dict:
    progress = progress or Progress(quiet=True)
    record = {} if record is None else record
    work = Path(out_dir) / "locust"
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("history.jsonl", "summary.json"):
        (work / stale).unlink(missing_ok=True)
    record["parameters"] = {"users": users, "spawn_rate": spawn_rate, "duration_s": duration,
                            "processes": processes, "wait_min_s": wait_min, "wait_max_s": wait_max,
                            "task_weights": weights or dict(blog_api.DEFAULT_TASK_WEIGHTS)}
    record["started_at"] = now_iso()
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", target.rstrip("/"),
               "-u", str(users), "-r", str(spawn_rate), "-t", f"{max(1, int(round(duration)))}s",
               "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
    if processes > 1:
        command += ["--processes", str(processes)]
    env = {**os.environ, "BLOG_PERF_LOCUST_OUT": str(work), "BLOG_PERF_WAIT_MIN": str(wait_min),
           "BLOG_PERF_WAIT_MAX": str(wait_max), "PYTHONUNBUFFERED": "1",
           "BLOG_PERF_TASK_WEIGHTS": ",".join(f"{k}={v}" for k, v in record["parameters"]["task_weights"].items()),
           **(extra_env or {})}
    log_path = work / "locust.log"
    began = time.time()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        interrupted = False
        try:
            while child.poll() is None:
                history = _read_history(work / "history.jsonl")
                last = history[-1] if history else {}
                progress.update(
                    f"locust {bar(time.time() - began, duration + 5)} users {last.get('users', 0)} "
                    f"rps {stats.fmt_number(last.get('rps'), 0)} p95 {stats.fmt_ms(last.get('p95_ms'))} "
                    f"failures {last.get('failures', 0)} 429s {last.get('backpressure', 0)}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if child.poll() is None:
                # SIGTERM: Locust stops its users, fires "quitting" (summary written), exits.
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait(5)
            record["finished_at"] = now_iso()
            record["exit_code"] = child.returncode
            record["interrupted"] = interrupted
            record["history"] = _read_history(work / "history.jsonl")
            summary_path = work / "summary.json"
            record["summary"] = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
            record["log_tail"] = log_path.read_text(errors="replace")[-4000:]
            if record["summary"] is None:
                record["error"] = "Locust ended without writing its summary; see log_tail"
    if interrupted:
        raise KeyboardInterrupt
    summary = record["summary"] or {}
    progress.line(f"locust: {summary.get('requests', 0)} requests, {summary.get('failures', 0)} failed, "
                  f"{summary.get('backpressure_429', 0)} deliberate 429s, rps {stats.fmt_number(summary.get('rps'), 1)}, "
                  f"non-AI p95 {stats.fmt_ms((summary.get('non_ai') or {}).get('p95_ms'))}")
    return record
