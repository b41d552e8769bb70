"""``blog-perf compare`` flags a regression planted in a real run's results."""
from __future__ import annotations

import copy
import json

import pytest

from tests.support.perf import explain, load_results, run_perf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(perf_blog, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    done = run_perf("concurrency", "--target", perf_blog.blog.url, "--out", str(out), "--endpoints", "home,post",
                    "--levels", "1,5", "--level-duration", "0.5")
    assert done.returncode == 0, explain(done)
    return out / "results.json"


def write(path, document) -> str:
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def test_the_same_run_compared_with_itself_has_no_regression(baseline, tmp_path):
    done = run_perf("compare", str(baseline), str(baseline), "--out", str(tmp_path), timeout=60)
    assert done.returncode == 0, explain(done)
    assert "no regression beyond the tolerances (latencies 50 % or 10 ms" in done.stdout
    assert "+0.0 %" in done.stdout
    assert "no regression beyond the tolerances" in (tmp_path / "compare.html").read_text(encoding="utf-8")


def test_a_planted_regression_is_flagged_with_its_percentage(baseline, tmp_path):
    old = load_results(baseline.parent)
    new = copy.deepcopy(old)
    home = next(e for e in new["runs"]["concurrency"]["endpoints"] if e["name"] == "home")
    level = home["levels"][-1]
    level["latency_ms"]["p95"] = level["latency_ms"]["p95"] * 1.5 + 100  # beyond 50 % and 10 ms
    level["throughput_rps"] *= 0.97            # 3 % less: within the 10 % tolerance
    post = next(e for e in new["runs"]["concurrency"]["endpoints"] if e["name"] == "post")
    post["levels"][0]["throughput_rps"] *= 2  # twice the throughput: an improvement, not a regression
    new_path = write(tmp_path / "new.json", new)

    done = run_perf("compare", str(baseline), new_path, timeout=60)
    assert done.returncode == 1, explain(done)
    lines = done.stdout.splitlines()
    flagged = [line for line in lines if "REGRESSION" in line]
    assert len(flagged) == 2, done.stdout  # the level's p95, and the endpoint's "p95 at the top level"
    assert all("GET / · " in line for line in flagged)
    throughput = next(line for line in lines if "GET / · peak throughput" in line)
    assert "REGRESSION" not in throughput
    assert "2 regression(s) beyond the tolerances" in done.stdout
    html = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert html.count(">REGRESSION<") == 2 and "improvement" in html and "<svg" in html

    # A looser floor lets the same change pass.
    done = run_perf("compare", str(baseline), new_path, "--floor-ms", "1000", timeout=60)
    assert done.returncode == 0, explain(done)


def test_noise_on_a_small_latency_stays_within_the_absolute_floor(baseline, tmp_path):
    new = copy.deepcopy(load_results(baseline.parent))
    for endpoint in new["runs"]["concurrency"]["endpoints"]:
        for level in endpoint["levels"]:
            level["latency_ms"]["p95"] = min(level["latency_ms"]["p95"] * 2, level["latency_ms"]["p95"] + 9)
    done = run_perf("compare", str(baseline), write(tmp_path / "new.json", new), timeout=60)
    assert done.returncode == 0, explain(done)  # up to 9 ms worse: under the 10 ms floor
    done = run_perf("compare", str(baseline), str(tmp_path / "new.json"), "--floor-ms", "0", "--tolerance", "5",
                    timeout=60)
    assert done.returncode == 1, explain(done)  # without the floor the same change is a regression


def test_a_new_error_rate_is_a_regression_even_from_zero(baseline, tmp_path):
    new = copy.deepcopy(load_results(baseline.parent))
    level = new["runs"]["concurrency"]["endpoints"][0]["levels"][0]
    level["error_rate"] = 0.02
    done = run_perf("compare", str(baseline), write(tmp_path / "new.json", new), timeout=60)
    assert done.returncode == 1, explain(done)
    assert any("error rate" in line and "REGRESSION" in line for line in done.stdout.splitlines())
