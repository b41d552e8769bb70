"""`make run` as a newcomer meets it: from a clean copy of the checkout (no
``instance/``, no ``.run/``), in the environments the README names, stopped
every way a terminal, a supervisor or ``timeout`` stops it, with no process
left behind. One venv (this one) serves every copy; the copy's own code is
what runs (PYTHONPATH puts it first), and every port is a free one."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack import REPO, blog_environment, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

VENV = Path(sys.executable).parent.parent


def clean_copy(folder: Path) -> Path:
    """The checkout's files as a clone has them (tracked and new, not ignored)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / name.decode()
        if source.is_file():
            target = folder / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return folder


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children in sessions of their own too)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


class MakeRun:
    """`make run` in a copy, in a process group of its own (as a terminal runs it)."""

    def __init__(self, copy: Path, **settings: str):
        self.copy = copy
        ports = {"PORT": free_port(), "METRICS_PORT": free_port(), "WORKER_METRICS_PORT": free_port()}
        settings = {**ports, **settings}
        self.port, self.metrics_port, self.worker_port = (int(settings[name]) for name in ports)
        env = blog_environment(**settings)   # no blog setting of ours leaks in
        env.update(DEV_REDIS_PORT=str(free_port()), PYTHONPATH=f"{copy / 'service'}:{copy}")
        # The shared venv is taken as installed: a stale stamp must not re-point its editable install here.
        stamp = f"{VENV}/.installed-run"
        self.process = subprocess.Popen(["make", "--no-print-directory", "run", f"VENV={VENV}", "-o", stamp],
                                        cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        self.output = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_serving(self, timeout: float = 120) -> set[int]:
        """Once the home page answers: every process `make run` started."""
        def serving():
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited with {self.process.returncode}:\n{self.finish()}")
            return httpx.get(self.url + "/", timeout=5).status_code == 200
        wait_until(serving, timeout, "make run's home page")
        return descendants(self.process.pid)

    def devserver_pid(self) -> int:
        return next(pid for pid in descendants(self.process.pid)
                    if b"devserver.py" in Path(f"/proc/{pid}/cmdline").read_bytes())

    def finish(self, timeout: float = 60) -> str:
        try:
            self.output += self.process.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.output += self.process.communicate()[0]
            raise AssertionError(f"make run did not stop within {timeout} s:\n{self.output[-3000:]}") from None
        return self.output


def assert_all_gone(started: set[int], ports: list[int]) -> None:
    try:
        wait_until(lambda: not alive(started), 30, "every process make run started to end")
    except TimeoutError:
        names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in alive(started)}
        for pid in names:
            os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"left running: {names}") from None
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"


@pytest.fixture
def copy(tmp_path) -> Path:
    return clean_copy(tmp_path / "aiblog")


def test_with_nothing_set_it_serves_and_ctrl_c_stops_everything(copy):
    run = MakeRun(copy)
    started = run.wait_serving()
    assert (copy / "instance" / "secret_key").exists()
    assert "demo" in httpx.get(run.url + "/", timeout=5).text
    os.killpg(run.process.pid, signal.SIGINT)   # Ctrl-C: the terminal signals the foreground group
    output = run.finish()
    assert "log in as demo / demo-password" in output and "stopping" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert_all_gone(started, [run.port, run.metrics_port, run.worker_port])


def test_with_a_secret_key_set_it_serves_and_a_double_sigterm_stops_everything(copy):
    """``SECRET_KEY=... make run`` on a clean copy: the SQLite folder is made anyway."""
    run = MakeRun(copy, SECRET_KEY="s" * 64)
    started = run.wait_serving()
    assert not (copy / "instance" / "secret_key").exists() and (copy / "instance" / "aiblog.sqlite3").exists()
    os.killpg(run.process.pid, signal.SIGTERM)   # what timeout and supervisors send, to the group...
    time.sleep(0.05)
    os.killpg(run.process.pid, signal.SIGTERM)   # ...and again, while it is stopping
    output = run.finish()
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output[-3000:]
    assert_all_gone(started, [run.port, run.metrics_port, run.worker_port])


def test_in_production_it_serves_without_the_demo_account_and_sighup_stops_everything(copy):
    run = MakeRun(copy, SECRET_KEY="p" * 64, BLOG_ENV="production")
    started = run.wait_serving()
    assert "demo" not in httpx.get(run.url + "/", timeout=5).text   # no demo posts, no demo author
    os.killpg(run.process.pid, signal.SIGHUP)   # the terminal closed
    output = run.finish()
    assert "no demo account" in output and "create-admin NAME" in output, output[-3000:]
    assert "demo-password" not in output and "refusing to seed" not in output, output[-3000:]
    assert_all_gone(started, [run.port, run.metrics_port, run.worker_port])
    # The line's command works as printed (the database is where it says).
    line = next(line for line in output.splitlines() if "create-admin NAME" in line)
    command = line.split("make yours with ", 1)[1].replace("create-admin NAME", "create-admin admin")
    done = subprocess.run(["bash", "-c", command], env={**blog_environment(SECRET_KEY="p" * 64,
                          BLOG_ENV="production", ADMIN_PASSWORD="a-long-password"), "PATH": os.environ["PATH"]},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "admin admin created" in done.stdout, done.stdout + done.stderr


def test_a_killed_dev_server_takes_its_children_with_it(copy):
    run = MakeRun(copy)
    started = run.wait_serving()
    os.kill(run.devserver_pid(), signal.SIGKILL)   # no handler runs: the children must notice by themselves
    run.finish()
    assert_all_gone(started, [run.port, run.metrics_port, run.worker_port])


def test_a_port_in_use_gets_one_line_naming_it_and_its_holder(copy):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        run = MakeRun(copy, METRICS_PORT=str(busy))
        output = run.finish(120)
    assert run.process.returncode != 0
    lines = [line for line in output.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and f"port {busy} (METRICS_PORT) is in use by" in lines[0], output[-3000:]
    assert f"(pid {os.getpid()})" in lines[0] and "set METRICS_PORT" in lines[0], lines[0]
    assert "Traceback" not in output, output[-3000:]
