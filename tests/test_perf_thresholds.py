"""Thresholds set the exit code (CI gates on it); Ctrl-C keeps what was measured;
bad usage is a clear error."""
from __future__ import annotations

import re
import signal
import subprocess
import threading
import time

import pytest

from tests.support.perf import BLOG_PERF, REPO, explain, load_results, run_perf

pytestmark = pytest.mark.slow

HOME_ONLY = ["--endpoints", "home", "--levels", "1,5", "--level-duration", "0.5"]


def test_generous_thresholds_pass_with_exit_code_0(perf_blog, tmp_path):
    done = run_perf("concurrency", "--target", perf_blog.blog.url, "--out", str(tmp_path), *HOME_ONLY,
                    "--max-p95-ms", "60000", "--max-error-rate", "0.5", "--min-rps", "0.1")
    assert done.returncode == 0, explain(done)
    checks = load_results(tmp_path)["thresholds"]
    assert len(checks) == 5 and all(c["passed"] for c in checks)  # p95 and errors per level, peak rps
    assert "threshold missed" not in done.stderr


@pytest.mark.parametrize("option, value, failing_check", [
    ("--max-p95-ms", "0.001", "concurrency home c=1 p95 (ms)"),
    ("--min-rps", "1000000000", "concurrency home peak requests/s"),
])
def test_a_missed_threshold_exits_1_and_names_the_check(perf_blog, tmp_path, option, value, failing_check):
    done = run_perf("concurrency", "--target", perf_blog.blog.url, "--out", str(tmp_path), *HOME_ONLY, option, value)
    assert done.returncode == 1, explain(done)
    assert f"threshold missed: {failing_check}" in done.stderr
    checks = {c["check"]: c for c in load_results(tmp_path)["thresholds"]}
    assert checks[failing_check]["passed"] is False and checks[failing_check]["measured"] is not None
    assert "FAIL" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_error_rate_threshold_fails_against_a_failing_target(failing_url, tmp_path):
    done = run_perf("concurrency", "--target", failing_url, "--out", str(tmp_path), *HOME_ONLY,
                    "--max-error-rate", "0.01")
    assert done.returncode == 1, explain(done)
    assert "threshold missed: concurrency home c=1 error rate: measured 1.0" in done.stderr


def test_ctrl_c_stops_cleanly_and_writes_what_was_measured(perf_blog, tmp_path):
    process = subprocess.Popen([str(BLOG_PERF), "concurrency", "--target", perf_blog.blog.url, "--out", str(tmp_path),
                                "--endpoints", "home", "--levels", "1,2,3", "--level-duration", "60"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        # Interrupt during the first level, once its progress line reports answered requests.
        answered = re.compile(r"home c=1 .* [1-9][0-9]* requests")
        deadline = time.monotonic() + 40
        while not any(answered.search(line) for line in list(lines)):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        reader.join(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    stderr = "".join(lines)
    assert process.returncode == 130, stderr
    assert "interrupted: writing what was measured" in stderr
    document = load_results(tmp_path)
    assert document["interrupted"] is True
    levels = document["runs"]["concurrency"]["endpoints"][0]["levels"]
    assert len(levels) == 1 and levels[0]["interrupted"] is True
    assert levels[0]["ok"] > 0 and levels[0]["latency_ms"]["p50"] > 0
    assert "This run was interrupted" in (tmp_path / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("args, message", [
    (["concurrency", "--target", "ftp://example"], "is not an http(s) URL"),
    (["concurrency", "--target", "http://127.0.0.1:1", "--levels", "0,5"], "levels must be positive"),
    (["concurrency", "--target", "http://127.0.0.1:1", "--endpoints", "home,nope"], "endpoints are a comma list"),
    (["cache", "--target", "http://127.0.0.1:1", "--titles", "0"], "must be greater than 0"),
    (["locust", "--target", "http://127.0.0.1:1", "--wait-min", "3", "--wait-max", "1"], "--wait-max must not"),
    (["locust", "--target", "http://127.0.0.1:1", "--weights", "home=x"], "must be a whole number"),
    (["locust", "--target", "http://127.0.0.1:1", "--weights", "shop=1"], "unknown task 'shop'"),
])
def test_bad_usage_exits_2_with_a_message(args, message):
    done = run_perf(*args, timeout=30)
    assert done.returncode == 2, explain(done)
    assert message in done.stderr


def test_report_and_compare_of_missing_files_say_what_to_do(tmp_path):
    done = run_perf("report", str(tmp_path / "nothing"), timeout=30)
    assert done.returncode == 2 and "run a blog-perf command with --out first" in done.stderr
    (tmp_path / "other.json").write_text('{"not": "ours"}')
    done = run_perf("compare", str(tmp_path / "other.json"), str(tmp_path / "other.json"), timeout=30)
    assert done.returncode == 2 and "is not a blog-perf results file" in done.stderr
