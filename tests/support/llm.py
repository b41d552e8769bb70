"""The LLM simulator as a real process for tests (``blog-llm-sim``)."""
from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import REPO, VENV_BIN, free_port, wait_until


class LLMSimProcess:
    """``blog-llm-sim`` on a free loopback port.

    Options are the simulator's settings (``ttft``, ``tokens_per_second``,
    ``tokens``, ``answer_seconds``, ``error_rate``, ``hang_rate``,
    ``cut_rate``, ``seed``, ``models``/``model``), passed as command-line
    flags. Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(self, **options: Any) -> None:
        self.port = free_port()
        self.options = options
        self.process: subprocess.Popen | None = None
        self.log_path = tempfile.mktemp(prefix="aiblog-llm-sim-", suffix=".log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(VENV_BIN / "blog-llm-sim"), "--port", str(self.port)]
        for key, value in self.options.items():
            if key in ("model", "models"):
                for name in [value] if isinstance(value, str) else value:
                    cmd += ["--model", name]
            else:
                cmd += [f"--{key.replace('_', '-')}", str(value)]
        return cmd

    def start(self, timeout: float = 60) -> "LLMSimProcess":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command(), cwd=REPO, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"blog-llm-sim exited with {self.process.returncode}:\n{self.log()}")
            # /sim/stats is not counted, so readiness polls leave the counts at 0.
            return httpx.get(self.url + "/sim/stats", timeout=1).status_code == 200

        try:
            wait_until(ready, timeout, f"blog-llm-sim on port {self.port}")
        except (TimeoutError, RuntimeError):
            self.stop()
            raise
        return self

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.url + "/sim/stats", timeout=5).json()

    def reset(self) -> dict[str, Any]:
        return httpx.post(self.url + "/sim/reset", timeout=5).json()

    def configure(self, **settings: Any) -> dict[str, Any]:
        response = httpx.post(self.url + "/sim/config", json=settings, timeout=5)
        if response.status_code != 200:
            raise ValueError(f"blog-llm-sim refused {settings}: {response.text}")
        return response.json()

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def __enter__(self) -> "LLMSimProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
