"""The cache and concurrency testers against a real running blog: every figure
is in results.json, and the figures make sense."""
from __future__ import annotations

import pytest

from tests.support.perf import (ANSWER_SECONDS, QUICK_CACHE, QUICK_CONCURRENCY, explain, load_results,
                                run_perf)

pytestmark = pytest.mark.slow

LATENCY_FIELDS = {"count", "min", "mean", "p50", "p95", "p99", "max"}
LEVEL_FIELDS = {"level", "requested_duration_s", "elapsed_s", "attempts", "ok", "errors", "error_kinds", "error_rate",
                "throughput_rps", "latency_ms", "latencies_ms", "interrupted"}


def assert_environment(document: dict, target: str) -> None:
    env = document["environment"]
    assert env["target"] == target
    assert env["cpu_count"] >= 1 and env["python"] and env["platform"]
    assert env["versions"]["aiohttp"] and env["versions"]["locust"]
    assert document["started_at"] < document["finished_at"]
    assert document["interrupted"] is False


def test_concurrency_records_every_figure_per_endpoint_and_level(perf_blog, tmp_path):
    done = run_perf("concurrency", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_CONCURRENCY)
    assert done.returncode == 0, explain(done)
    document = load_results(tmp_path)
    assert_environment(document, perf_blog.blog.url)
    assert document["parameters"]["levels"] == [1, 5]
    run = document["runs"]["concurrency"]
    assert run["notes"] == []
    assert [e["name"] for e in run["endpoints"]] == ["home", "post", "ai"]
    for endpoint in run["endpoints"]:
        assert [lv["level"] for lv in endpoint["levels"]] == [1, 5]
        for level in endpoint["levels"]:
            assert set(level) >= LEVEL_FIELDS
            assert level["errors"] == 0 and level["error_kinds"] == {} and level["error_rate"] == 0.0, level["error_kinds"]
            assert level["ok"] == level["attempts"] == len(level["latencies_ms"]) >= level["level"]
            latency = level["latency_ms"]
            assert set(latency) == LATENCY_FIELDS
            assert 0 < latency["min"] <= latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
            assert level["throughput_rps"] > 0 and level["elapsed_s"] > 0
    assert "<svg" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_cache_times_uncached_then_cached_generations(perf_blog, tmp_path):
    calls_before = perf_blog.llm.stats()["generations"]
    done = run_perf("cache", "--target", perf_blog.blog.url, "--out", str(tmp_path), *QUICK_CACHE)
    assert done.returncode == 0, explain(done)
    document = load_results(tmp_path)
    assert_environment(document, perf_blog.blog.url)
    run = document["runs"]["cache"]
    assert len(run["titles"]) == 3 and any("缓存" in t["title"] for t in run["titles"])  # CJK titles travel too
    for entry in run["titles"]:
        first, following = entry["uncached"], entry["cached"]
        assert first["ok"] and first["cached"] is False
        assert first["ms"] >= ANSWER_SECONDS * 1000 * 0.9  # it really waited for the LLM
        assert len(following) == 2 and all(c["ok"] and c["cached"] for c in following)
        assert all(c["ms"] < first["ms"] for c in following)
        assert entry["content_matches"] is True
    # Exactly one LLM call per fresh title: the cached calls never reached it.
    assert perf_blog.llm.stats()["generations"] - calls_before == 3
    summary = run["summary"]
    assert summary["attempts"] == 9 and summary["failures"] == 0 and summary["failure_rate"] == 0.0
    assert summary["cached_calls_not_from_cache"] == 0
    assert summary["uncached_ms"]["count"] == 3 and summary["cached_ms"]["count"] == 6
    for key in ("mean", "p50", "p95"):
        assert summary["uncached_ms"][key] > summary["cached_ms"][key] > 0
    assert summary["speedup_mean"] == pytest.approx(summary["uncached_ms"]["mean"] / summary["cached_ms"]["mean"])
    assert summary["speedup_mean"] > 1
    concurrent = run["concurrent"]
    assert concurrent["clients"] == 5 and concurrent["attempts"] > 0 and concurrent["errors"] == 0
    assert concurrent["latency_ms"]["p50"] > 0 and concurrent["latency_ms"]["p99"] >= concurrent["latency_ms"]["p50"]
