"""The runner's side of the contract with the operator: the summary lines in
the log, the one judging code, the master/worker options."""
from __future__ import annotations

import pytest

from loadtests import blog_perf
from perfcontract import judging, run_summary
from operators.loadtest import results, spec as spec_module
from tests.operator.support import runner_log, summary_document


def test_the_summary_and_the_report_survive_the_trip_through_a_log():
    document = summary_document(requests=321, p95=42.0)
    report = ("<html>" + "figures " * 20000 + "</html>").encode()  # several chunks
    log = "noise before\n" + runner_log(document, report) + "noise after\n"
    record = run_summary.parse_summary(log)
    assert record["summary"]["requests"] == 321 and record["summary"]["non_ai"]["p95_ms"] == 42.0
    assert all("response_times" not in entry for entry in record["summary"]["entries"])  # histograms stay home
    assert run_summary.parse_report(log) == report
    assert max(len(line) for line in log.splitlines()) < 16 * 1024  # under the runtimes' line split


def test_a_cut_log_gives_a_clear_problem_not_a_crash():
    log = runner_log(summary_document())
    lines = log.splitlines()
    with pytest.raises(run_summary.LogSummaryError, match="no BLOG_PERF_SUMMARY line"):
        run_summary.parse_summary("\n".join(lines[:-1]))
    with pytest.raises(run_summary.LogSummaryError, match="not JSON"):
        run_summary.parse_summary(lines[-1][:-20])
    assert run_summary.parse_report("\n".join(line for line in lines if not line.endswith("1/1") and
                                              "BLOG_PERF_REPORT 1/" not in line)) is None


def test_blog_perf_and_the_operator_judge_with_the_same_code():
    summary = summary_document(requests=1000, failures=30, rps=12.0, p95=300.0, p99=900.0)["runs"]["locust"]["summary"]
    document = {"runs": {"locust": {"summary": summary}}}
    cli_checks = judging.evaluate(document, max_p95_ms=200, max_error_rate=0.01, min_rps=5, max_p99_ms=800)
    test = spec_module.parse({"target": {"url": "http://blog:8000"}, "users": 5, "duration": 10,
                              "thresholds": {"p95Ms": 200, "p99Ms": 800, "maxErrorRate": 0.01, "minRps": 5}}, "ns")
    verdict = results.judge(summary, test)
    assert verdict.checks == cli_checks
    assert verdict.verdict == "Failed" and [c["check"] for c in judging.failed(cli_checks)] == [
        "locust non-AI p95 (ms)", "locust non-AI p99 (ms)", "locust failure rate"]


@pytest.mark.parametrize("args, problem", [
    (["--master"], "--master needs --expect-workers N"),
    (["--worker"], "--worker needs --master-host HOST"),
    (["--expect-workers", "2"], "--expect-workers goes with --master"),
    (["--master", "--expect-workers", "2", "--processes", "2"], "--processes is for one machine"),
    (["--worker", "--master-host", "m", "--accounts", "3"], "--accounts goes to the master"),
])
def test_master_and_worker_options_that_do_not_fit_are_usage_errors(capsys, args, problem):
    assert blog_perf.main(["locust", "--target", "http://127.0.0.1:9", *args]) == blog_perf.EXIT_USAGE
    assert problem in capsys.readouterr().err


def test_master_and_worker_cannot_both_be_asked_for(capsys):
    with pytest.raises(SystemExit) as stop:
        blog_perf.main(["locust", "--target", "http://127.0.0.1:9", "--master", "--worker"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
