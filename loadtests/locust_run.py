"""Run the Locust scenario headless in a child process and collect its figures.

Locust runs as its own process (gevent monkey-patching must not leak into the
asyncio testers); the scenario writes history.jsonl and summary.json (see
locustfile.py), which this module tails for the progress line and reads at
the end. ``processes > 1`` uses Locust's ``--processes`` (a master plus forked
workers) for more load than one core generates.

Distributed over pods (the LoadTest operator): ``master=Master(workers=N)``
runs Locust's ``--master --expect-workers N`` (the only process that records
figures), and ``run_worker`` runs ``--worker --master-host H`` with the same
scenario and settings. A master whose workers never connect gives up after
``max_wait`` seconds and says so in ``record["error"]``.

``accounts``: a number creates that many accounts before the run (through the
sign-up form, a few at a time, so the blog hashes their passwords before the
measurement rather than all at once inside it) and the users share them; a
file of ``username:password`` lines uses existing accounts; None lets each
user register its own when it starts (the spawn rate bounds that rate).

``metrics``: the master (or the single local process) serves the run's live
figures for Prometheus there while it goes on (live_metrics.py, locust_live.py).

``steps``: a stepped run (perfcontract.capacity.Profile) instead of ``users``
for ``duration``: the master runs locust_steps.py's shape and records each
step's figures in the summary.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.monitor_targets import LOAD_TEST_JOB, announced
from devstack.processes import children_of, cpu_seconds
from perfcontract.capacity import Profile
from perfcontract.results_file import now_iso
from perfcontract.runner import MASTER_PORT
from perfcontract.task_mix import DEFAULT_TASK_WEIGHTS

from . import blog_api, blog_client, live_metrics, stats
from .account_file import Account, read_accounts, write_accounts
from .progress import Progress, bar

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
RECORDING = Path(__file__).with_name("locust_recording.py")  # the recording, for a scenario of your own
STEPS = Path(__file__).with_name("locust_steps.py")  # the shape of a stepped run, on the master only
ACCOUNT_SIGNUPS_AT_ONCE = 4  # each sign-up is a password hash on the blog: a few at a time, not a burst
WORKERS_GAVE_UP = "Gave up waiting for workers to connect"  # Locust's own log line


@dataclass(frozen=True)
class Master:
    """Run as the master of ``workers`` Locust workers in other processes or pods."""
    workers: int
    max_wait: float = 120.0  # seconds to wait for them before giving up
    port: int = MASTER_PORT


async def _register_accounts(target: str, count: int) -> list[Account]:
    run, password = blog_api.run_id(), f"lt-{blog_api.run_id()}{blog_api.run_id()}"
    accounts = [Account(f"lt-{run}-{number}", password) for number in range(1, count + 1)]
    gate = asyncio.Semaphore(ACCOUNT_SIGNUPS_AT_ONCE)

    async def sign_up(account: Account) -> None:
        async with gate:
            await blog_client.register(target, account.username, account.password)

    await asyncio.gather(*(sign_up(account) for account in accounts))
    return accounts


def create_accounts(target: str, count: int, path: str | Path) -> Path:
    """Register ``count`` accounts on ``target`` and write them to ``path`` for the scenario.
    Raises blog_client.SetupError when the blog refuses a sign-up."""
    return write_accounts(path, asyncio.run(_register_accounts(target.rstrip("/"), count)))


def _accounts_file(target: str, accounts: int | str | Path | None, record: dict,
                   progress: Progress) -> tuple[Path | None, Path | None]:
    """The file for BLOG_PERF_ACCOUNTS (None: users register their own) and a scratch dir to remove after the run."""
    parameters = record["parameters"]
    if accounts is None and os.environ.get("BLOG_PERF_ACCOUNTS"):
        accounts = os.environ["BLOG_PERF_ACCOUNTS"]
    if accounts is None:
        parameters["accounts"] = {"source": "each user registers its own", "count": None}
        return None, None
    if isinstance(accounts, int):
        scratch = Path(tempfile.mkdtemp(prefix="blog-perf-accounts-"))
        progress.update(f"locust: creating {accounts} accounts ({ACCOUNT_SIGNUPS_AT_ONCE} sign-ups at a time)")
        began = time.time()
        try:
            path = create_accounts(target, accounts, scratch / "accounts.txt")
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        parameters["accounts"] = {"source": "created before the run", "count": accounts}
        record["accounts_setup_s"] = round(time.time() - began, 1)
        return path, scratch
    path = Path(accounts)
    parameters["accounts"] = {"source": "file", "count": len(read_accounts(path))}  # ValueError names the problem
    return path, None


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
        record: dict | None = None, extra_env: dict | None = None, weights: dict | None = None,
        accounts: int | str | Path | None = None, master: Master | None = None,
        scenario: str | Path | None = None, metrics: live_metrics.LiveMetrics | None = None,
        steps: Profile | None = None) -> dict:
    progress = progress or Progress(quiet=True)
    record = {} if record is None else record
    work = Path(out_dir) / "locust"
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("history.jsonl", "summary.json", "steps.json"):
        (work / stale).unlink(missing_ok=True)
    record["parameters"] = {"users": users, "spawn_rate": spawn_rate, "duration_s": duration,
                            "processes": processes, "wait_min_s": wait_min, "wait_max_s": wait_max,
                            "task_weights": weights or dict(DEFAULT_TASK_WEIGHTS),
                            "workers": master.workers if master else 0,
                            "scenario": str(scenario) if scenario else "built-in",
                            "live_metrics": metrics.url if metrics else None,
                            "steps": steps.text() if steps else None}
    if steps is not None:  # the shape decides the users and the length
        users, duration = steps.end, steps.total_seconds
    accounts_path, scratch = _accounts_file(target, accounts, record, progress)
    try:
        _run_locust(target, work, users, spawn_rate, duration, processes, wait_min, wait_max, progress, record,
                    extra_env, accounts_path, master, scenario, metrics, steps)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)  # the accounts' passwords do not outlive the run
    summary = record["summary"] or {}
    progress.line(f"locust: {summary.get('requests', 0)} requests, {summary.get('failures', 0)} failed, "
                  f"{summary.get('backpressure_429', 0)} deliberate 429s, rps {stats.fmt_number(summary.get('rps'), 1)}, "
                  f"non-AI p95 {stats.fmt_ms((summary.get('non_ai') or {}).get('p95_ms'))}")
    return record


def _locust_env(wait_min: float, wait_max: float, weights: dict, extra_env: dict | None) -> dict:
    """The scenario's settings, the same for a local run, a master and its workers."""
    return {**os.environ, "BLOG_PERF_WAIT_MIN": str(wait_min), "BLOG_PERF_WAIT_MAX": str(wait_max),
            "PYTHONUNBUFFERED": "1", "BLOG_PERF_TASK_WEIGHTS": ",".join(f"{k}={v}" for k, v in weights.items()),
            **(extra_env or {})}


def locustfiles(scenario: str | Path | None, stepped: bool = False) -> str:
    """Locust's ``-f``: the built-in scenario, or the recording plus a scenario of your own;
    with a stepped run's shape when ``stepped`` (the master's or the single process's)."""
    files = str(LOCUSTFILE) if scenario is None else f"{RECORDING},{scenario}"
    return f"{files},{STEPS}" if stepped else files


def run_worker(master_host: str, master_port: int = MASTER_PORT, wait_min: float = 1.0, wait_max: float = 3.0,
               weights: dict | None = None, extra_env: dict | None = None, scenario: str | Path | None = None) -> int:
    """Run one Locust worker of a master elsewhere until the master ends the run; its exit code.
    The worker's output goes to this process's own (the pod's log)."""
    command = [sys.executable, "-m", "locust", "-f", locustfiles(scenario), "--worker", "--master-host", master_host,
               "--master-port", str(master_port), "--loglevel", "WARNING"]
    env = _locust_env(wait_min, wait_max, weights or dict(DEFAULT_TASK_WEIGHTS), extra_env)
    env.pop("BLOG_PERF_LOCUST_OUT", None)  # only the master records
    for name in (live_metrics.PORT_ENV, live_metrics.HOST_ENV, live_metrics.RUN_ENV):
        env.pop(name, None)  # and serves the live figures
    child = subprocess.Popen(command, env=env, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            return child.wait(5)


def _announced(metrics: live_metrics.LiveMetrics | None):
    """A local run's live figures, announced to ``make monitor`` (devstack/monitor_targets.py)."""
    if metrics is None or metrics.host not in ("127.0.0.1", "localhost", "::1"):
        return contextlib.nullcontext()  # a cluster's PodMonitor finds the masters there
    return announced(LOAD_TEST_JOB, f"{metrics.host}:{metrics.port}", {"loadtest": "local"})


def _locust_command(target: str, users: int, spawn_rate: float, duration: float, processes: int,
                    master: Master | None, scenario: str | Path | None, steps: Profile | None) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", locustfiles(scenario, steps is not None), "--headless",
               "--host", target.rstrip("/"), "--only-summary", "--stop-timeout", "5", "--loglevel", "WARNING"]
    if steps is None:
        command += ["-u", str(users), "-r", str(spawn_rate), "-t", f"{max(1, int(round(duration)))}s"]
    else:  # the shape sets the users and ends the run; the time limit is a safety net only
        command += ["-t", f"{int(steps.total_seconds) + 30}s"]
    if processes > 1:
        command += ["--processes", str(processes)]
    if master is not None:
        command += ["--master", "--expect-workers", str(master.workers), "--master-bind-port", str(master.port),
                    "--expect-workers-max-wait", str(max(1, int(round(master.max_wait))))]
    return command


def _record_outcome(record: dict, exit_code: int, interrupted: bool, work: Path, log_path: Path,
                    master: Master | None, progress: Progress) -> None:
    """What the ended Locust left: its summary, history and log tail, and why it failed if it did."""
    record["finished_at"] = now_iso()
    record["exit_code"] = exit_code
    record["interrupted"] = interrupted
    record["history"] = _read_history(work / "history.jsonl")
    summary_path = work / "summary.json"
    record["summary"] = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else None
    log_text = log_path.read_text(errors="replace")
    record["log_tail"] = log_text[-4000:]
    for line in log_text.splitlines():
        if live_metrics.CANNOT_SERVE in line:  # the run went on without its live figures
            note = line[line.index(live_metrics.CANNOT_SERVE):]
            record.setdefault("notes", []).append(note)
            progress.line(f"locust: {note}")
    if (record["summary"] or {}).get("refused"):
        record["error"] = record["summary"]["refused"]  # the blog's rate limits stopped the run
    if record["summary"] is None:
        record["error"] = "Locust ended without writing its summary; see log_tail"
        if master is not None and WORKERS_GAVE_UP in record["log_tail"]:
            record["error"] = (f"workers never connected: fewer than {master.workers} within "
                               f"{master.max_wait:g} s")


def _run_locust(target: str, work: Path, users: int, spawn_rate: float, duration: float, processes: int,
                wait_min: float, wait_max: float, progress: Progress, record: dict, extra_env: dict | None,
                accounts_path: Path | None, master: Master | None = None,
                scenario: str | Path | None = None, metrics: live_metrics.LiveMetrics | None = None,
                steps: Profile | None = None) -> None:
    record["started_at"] = now_iso()
    command = _locust_command(target, users, spawn_rate, duration, processes, master, scenario, steps)
    env = {**_locust_env(wait_min, wait_max, record["parameters"]["task_weights"], extra_env),
           "BLOG_PERF_LOCUST_OUT": str(work)}
    if steps is not None:
        env.update(BLOG_PERF_STEPS=steps.text(), BLOG_PERF_SPAWN_RATE=f"{spawn_rate:g}")
    if accounts_path is not None:
        env["BLOG_PERF_ACCOUNTS"] = str(accounts_path)
    for name in (live_metrics.PORT_ENV, live_metrics.HOST_ENV, live_metrics.RUN_ENV):
        env.pop(name, None)  # only this run's own settings
    if metrics is not None:
        env.update(metrics.env())
    log_path = work / "locust.log"
    began = time.time()
    with _announced(metrics), open(log_path, "wb") as log:
        child = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        interrupted = False
        generator_cpu: dict[int, float] = {}  # pid -> CPU seconds last seen: Locust's own cost
        try:
            while child.poll() is None:
                for pid in (child.pid, *children_of(child.pid)):
                    generator_cpu[pid] = max(generator_cpu.get(pid, 0.0), cpu_seconds(pid))
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
            _record_outcome(record, child.returncode, interrupted, work, log_path, master, progress)
            # Sampled every half second while it ran (its last half second is not in it).
            record["generator_cpu_s"] = round(sum(generator_cpu.values()), 2)
    if interrupted:
        raise KeyboardInterrupt
