"""`make monitor` (scripts/monitor.py): a real Prometheus with the project's
scrape config and rules, aimed at the locally running blog."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.support.monitoring import RULES_FILE, load_monitor_script, rules
from devstack import REPO, Gunicorn, free_port, port_open, require_binary, run_aiblog, wait_until
from tests.conftest import blog_env

SCRIPT = REPO / "scripts" / "monitor.py"


def test_written_config_passes_promtool(tmp_path):
    monitor = load_monitor_script()
    config = tmp_path / "prometheus.yml"
    monitor.write_config(config, monitor.prometheus_config(["127.0.0.1:9100"]))
    result = subprocess.run([require_binary("promtool", "the Debian package 'prometheus'"), "check", "config", str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(RULES_FILE) in result.stdout  # the rules are loaded with it


def test_default_target_is_the_blogs_metrics_port(monkeypatch):
    monkeypatch.setenv("METRICS_PORT", "9345")
    monkeypatch.setenv("BIND_HOST", "0.0.0.0")
    monkeypatch.delenv("METRICS_BIND", raising=False)
    assert load_monitor_script().default_target() == "127.0.0.1:9345"


def test_missing_prometheus_is_named_with_its_package(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(tmp_path)], capture_output=True, text=True,
                            env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 1
    assert "Debian package 'prometheus'" in result.stderr and "apt-get install prometheus" in result.stderr


@pytest.mark.slow
def test_monitor_scrapes_the_running_blog_and_loads_the_rules(tmp_path):
    env = blog_env(DATABASE_URL=f"sqlite:///{tmp_path / 'blog.sqlite3'}", REDIS_URL="")
    run_aiblog("migrate", env=env)
    blog = Gunicorn(tmp_path, env)
    blog.start()
    port = free_port()
    monitor = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--dir", str(tmp_path / "monitor"),
         "--scrape-interval", "1s"],
        env={**blog.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: port_open(port), 30, "prometheus started by monitor.py")
        api = f"http://127.0.0.1:{port}/api/v1"

        def target_up():
            targets = httpx.get(f"{api}/targets").json()["data"]["activeTargets"]
            return [t for t in targets if t["labels"]["job"] == "aiblog" and t["health"] == "up"]

        up = wait_until(target_up, 30, "the blog's metrics target to be up")
        assert up[0]["scrapeUrl"] == blog.metrics_url
        loaded = [rule for group in httpx.get(f"{api}/rules").json()["data"]["groups"] for rule in group["rules"]]
        assert len(loaded) == len(rules())
    finally:
        monitor.send_signal(signal.SIGTERM)
        output, _ = monitor.communicate(timeout=20)
        blog.stop()
    assert f"http://127.0.0.1:{port}/targets" in output and "Ctrl-C" in output
    assert wait_until(lambda: not port_open(port), 10, "prometheus to stop with monitor.py")
