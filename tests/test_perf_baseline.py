"""Did it get slower? ``blog-perf locust --baseline`` and ``blog-perf compare``
judge real runs with the LoadTest operator's rule (perfcontract.baseline):
two runs of the same build compare as equal, a slowed build is a regression."""
from __future__ import annotations

import pytest

from devstack import Gunicorn
from tests.support.perf import explain, load_results, refused_before_the_run, run_perf
from tests.support.slowed_blog import DELAY_ENV

pytestmark = pytest.mark.slow

# Readers only (no sign-up or login: password hashing makes p95 bimodal in short runs),
# enough requests (about 600) that p95 is not one unlucky request.
def readers(seconds: float = 8) -> list[str]:
    return ["--users", "10", "--spawn-rate", "10", "--duration", str(seconds), "--wait-min", "0.05",
            "--wait-max", "0.2", "--weights", "home=10,post=5,login=0,write=0,ai=0", "--quiet"]


READERS = readers()
DELAY_S = 0.08


@pytest.fixture(scope="module")
def slowed_blog(perf_blog):
    blog = Gunicorn(perf_blog.workdir, {**perf_blog.env, DELAY_ENV: str(DELAY_S)},
                    app="tests.support.slowed_blog:create_app()", name="slowed-blog").start()
    yield blog
    blog.stop()


@pytest.fixture(scope="module")
def first_run(perf_blog, tmp_path_factory):
    # A blog just started renders its pages once before it caches them: a short run warms it
    # first, as a cluster's earlier runs did for a LoadTest's baseline.
    warm = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path_factory.mktemp("warm")),
                    *readers(3))
    assert warm.returncode == 0, explain(warm)
    out = tmp_path_factory.mktemp("first")
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(out), *READERS)
    assert done.returncode == 0, explain(done)
    return out


def _comparison(out) -> dict:
    return {f["figure"]: f for f in load_results(out)["comparison"]["figures"]}


def test_two_runs_of_the_same_build_compare_as_equal(perf_blog, first_run, tmp_path):
    done = run_perf("locust", "--target", perf_blog.blog.url, "--out", str(tmp_path), "--baseline", str(first_run),
                    *READERS)
    assert done.returncode == 0, explain(done)
    comparison = load_results(tmp_path)["comparison"]
    assert comparison["regressed"] is False and comparison["baseline"]["file"] == str(first_run)
    figures = _comparison(tmp_path)
    assert set(figures) == {"p95", "p99", "rps", "errorRate"}
    assert all(f["baseline"] is not None and f["value"] is not None for f in figures.values()), figures
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Against the baseline" in html and "Within the tolerance of the baseline" in html
    # blog-perf compare judges the two files with the same rule and agrees.
    compared = run_perf("compare", str(first_run / "results.json"), str(tmp_path / "results.json"), timeout=60)
    assert compared.returncode == 0, explain(compared)


def test_a_slowed_build_is_a_regression_in_both_commands(first_run, slowed_blog, tmp_path):
    done = run_perf("locust", "--target", slowed_blog.url, "--out", str(tmp_path), "--baseline", str(first_run),
                    *READERS)
    assert done.returncode == 1, explain(done)
    figures = _comparison(tmp_path)
    p95 = figures["p95"]
    assert p95["regressed"] is True and p95["value"] >= DELAY_S * 1000 > p95["baseline"] + p95["allowedWorsening"]
    assert p95["delta"] == pytest.approx(p95["value"] - p95["baseline"])
    assert figures["errorRate"]["regressed"] is False
    assert "regressed: non-AI p95 (ms)" in done.stderr
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "the verdict is Regressed" in html and "REGRESSED" in html

    compared = run_perf("compare", str(first_run / "results.json"), str(tmp_path / "results.json"), timeout=60)
    assert compared.returncode == 1, explain(compared)
    p95_line = next(line for line in compared.stdout.splitlines() if line.startswith("Locust non-AI p95"))
    assert "REGRESSION" in p95_line


@pytest.mark.parametrize("option, problem", [
    (["--baseline", "/nonexistent/results.json"], "does not exist"),
    (["--baseline-figures", "p50=3"], "is not FIGURE=VALUE"),
    (["--baseline-figures", "p95=-1"], "not a number from 0"),
    (["--baseline-tolerances", "p95=ten"], "is not a number"),
])
def test_a_baseline_that_cannot_be_used_is_a_usage_error_before_the_run(perf_blog, option, problem, tmp_path):
    assert problem in refused_before_the_run(perf_blog.blog.url, tmp_path, *option, *READERS)
