"""Broken targets give error rates by kind — not crashes, not empty reports."""
from __future__ import annotations

import re

import pytest

from tests.support.perf import QUICK_CACHE, QUICK_CONCURRENCY, QUICK_LOCUST, explain, load_results, run_perf

pytestmark = pytest.mark.slow


def run_everything_against(target: str, out) -> dict:
    done = run_perf("all", "--target", target, "--out", str(out), *QUICK_CONCURRENCY, *QUICK_CACHE, *QUICK_LOCUST,
                    "--duration", "3")
    assert done.returncode == 0, explain(done)  # no threshold given: errors are results, not a failed run
    return load_results(out)


def assert_every_request_failed_with(document: dict, kind: str) -> None:
    runs = document["runs"]
    for endpoint in runs["concurrency"]["endpoints"]:
        for level in endpoint["levels"]:
            assert level["attempts"] > 0 and level["ok"] == 0
            assert level["error_rate"] == 1.0
            assert level["error_kinds"] == {kind: level["attempts"]}  # every failure counted, with its kind
            assert level["throughput_rps"] == 0.0
            assert level["latency_ms"]["p95"] is None  # never a made-up latency
    cache = runs["cache"]["summary"]
    assert cache["attempts"] == 3 * (1 + 2) and cache["failures"] == cache["attempts"]
    assert cache["failure_rate"] == 1.0 and cache["error_kinds"] == {kind: cache["attempts"]}
    assert cache["speedup_mean"] is None and cache["cached_ms"]["mean"] is None
    locust = runs["locust"]["summary"]
    assert locust["requests"] > 0 and locust["failures"] == locust["requests"]
    assert locust["failure_rate"] == 1.0


def assert_report_shows_errors(out) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    # The error-rate chart has a drawn series at 100 %; latency charts say why they are empty.
    errors_chart = re.search(r'<svg[^>]*id="concurrency-errors".*?</svg>', html, re.S).group(0)
    assert 'class="series"' in errors_chart and ">100<" in errors_chart
    assert "no successful request: see the error rate" in html
    assert "—" in html and "NaN" not in html and ">nan" not in html and ">-" not in html
    for section in ("summary", "concurrency", "cache", "locust", "parameters"):
        assert f'id="{section}"' in html


def test_a_target_that_refuses_connections_gives_connection_errors(refusing_url, tmp_path):
    document = run_everything_against(refusing_url, tmp_path)
    assert_every_request_failed_with(document, "connection")
    assert any("no API token" in note for note in document["runs"]["concurrency"]["notes"])
    assert_report_shows_errors(tmp_path)


def test_a_target_that_answers_500_gives_status_errors(failing_url, tmp_path):
    document = run_everything_against(failing_url, tmp_path)
    assert_every_request_failed_with(document, "status:500")
    errors = document["runs"]["locust"]["summary"]["errors"]
    assert errors and all(e["occurrences"] >= 1 for e in errors)
    assert_report_shows_errors(tmp_path)
