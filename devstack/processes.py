"""A child process of the dev stack (``Service``), and waiting for it.

Each part runs in a session of its own (Ctrl-C in the terminal does not kill
it half-way; ``stop`` does), keeps its log in its folder (a temp dir unless
one is given, removed by ``close``) and, with ``console``/``tied``, dies with
this process (Linux's PR_SET_PDEATHSIG). Also: finding the project's programs,
and what /proc says about a process (children, memory, CPU time).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
THIS_PROJECT = "this project (pip install -e .)"
PR_SET_PDEATHSIG = 1


class StackError(RuntimeError):
    """A part of the stack did not start (the message carries its log)."""


class StackTimeout(StackError, TimeoutError):
    """Something waited for did not happen in time."""


def die_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn``: the child gets SIGTERM when ``parent`` dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so ``make run`` leaves no orphans."""
    def tie() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):   # not Linux: stop() is the only way
            return
        if os.getppid() != parent:   # the parent died before the tie was made
            os._exit(1)
    return tie


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition",
               interval: float = 0.05):
    """Poll until ``predicate`` is truthy; raise StackTimeout naming ``what`` at the deadline.
    A StackError raised by the predicate (a part died) ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except StackError:
            raise
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
        time.sleep(interval)
    raise StackTimeout(f"timed out after {timeout:g}s waiting for {what}"
                     + (f" (last error: {last_error!r})" if last_error else ""))


def require_binary(name: str, install: str) -> str:
    """The path of program ``name`` (the venv's first), or a StackError saying to install ``install``."""
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise StackError(f"'{name}' not found: install {install}")


class Service:
    """A child process in its own session, with its log in its folder.

    ``console=True`` (``make run``) sends its output to the terminal instead,
    and (like ``tied=True``) ties the child's life to this process: a terminal
    that closes or a ``kill -9`` of the dev server still stops it."""

    name = "service"

    def __init__(self, workdir: Path | str | None = None, console: bool = False, tied: bool | None = None):
        self.tied = console if tied is None else tied
        self.own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"aiblog-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self._log = None

    def spawn(self, args: list[str], env: dict | None = None) -> None:
        """Start the child (a subclass's ``start`` calls this, then ``wait_ready``)."""
        if not self.console:
            self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        preexec_fn=die_with_parent(os.getpid()) if self.tied else None)

    def wait_ready(self, ready: Callable[[], object], timeout: float, what: str) -> None:
        """Wait until ``ready()``. If the process dies or the time runs out, stop it
        and raise a StackError carrying its log."""
        try:
            wait_until(lambda: self.check_alive() or ready(), timeout, what)
        except StackTimeout as exc:
            self.stop()
            raise StackTimeout(f"{exc}; {self.name}'s log:\n{self.log_tail()}") from None
        except BaseException:  # it died, or Ctrl-C: never leave it running
            self.stop()
            raise

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise StackError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def stop(self, grace: float = 15) -> None:
        if self.running:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop, and remove the folder if this part made it."""
        self.stop()
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def start(self):
        raise NotImplementedError

    def __enter__(self):
        return self if self.running else self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return sorted(children)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
