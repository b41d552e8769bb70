"""A runner's log is hostile input: a LoadTest's author controls the runner's
image and scenario, and a mesh may inject a sidecar that logs too. Whatever
the log holds, the operator reads a bounded tail of the runner's own
container, ends the run (Failed with a reason and an Event, never a retry
loop), and goes on running every other LoadTest. The operator's memory under
a gzip bomb is measured in tests/operator/test_operator_process.py, where it
is a process of its own."""
from __future__ import annotations

import base64
import json
import zlib

import pytest

from perfcontract import run_summary
from tests.operator.cluster import PodScript
from tests.operator.support import apply, load_test, objects, runner_log, summary_document, wait_status
from devstack import wait_until


def gzip_bomb_lines(inflated_mib: int) -> list[str]:
    """BLOG_PERF_REPORT lines whose report inflates to ``inflated_mib`` MiB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    packed = b"".join(packer.compress(zeros) for _ in range(inflated_mib)) + packer.flush()
    encoded = base64.b64encode(packed).decode()
    chunks = [encoded[i:i + run_summary.REPORT_CHUNK] for i in range(0, len(encoded), run_summary.REPORT_CHUNK)]
    return [f"{run_summary.REPORT_PREFIX}{n}/{len(chunks)} {chunk}" for n, chunk in enumerate(chunks, 1)]


def summary_line(record) -> str:
    return run_summary.SUMMARY_PREFIX + (record if isinstance(record, str) else json.dumps(record))


def a_good_record(**summary_changes) -> dict:
    record = run_summary.summary_of(summary_document(requests=500, failures=0))
    record["summary"].update(summary_changes)
    return record


def assert_the_next_load_test_still_runs(cluster, name: str) -> None:
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=300, failures=0)))
    apply(cluster, load_test(name))
    final = wait_status(cluster, name, "the next LoadTest runs", phase="Succeeded")
    assert final["latest"]["requests"] == 300


def test_the_runners_own_container_is_read_and_an_injected_sidecars_log_never_is(cluster):
    forged = runner_log(summary_document(requests=999_999, failures=0))
    cluster.cluster.scripts["master"] = PodScript(log=runner_log(summary_document(requests=1200, failures=6)),
                                                  sidecar_log=forged)
    apply(cluster, load_test("meshed"))
    final = wait_status(cluster, "meshed", "the run is collected", phase="Succeeded")
    assert final["latest"]["requests"] == 1200
    reads = cluster.cluster.log_requests
    assert reads and all(r.get("container") == "master" for r in reads), reads
    assert reads[-1]["tailLines"] == str(run_summary.TAIL_LINES) and reads[-1]["limitBytes"] == str(
        run_summary.TAIL_BYTES)


def test_megabytes_of_chatter_before_the_summary_are_not_read(cluster):
    chatter = "\n".join(f"[locust] line {n} " + "x" * 200 for n in range(40_000))   # about 8.6 MB
    cluster.cluster.scripts["master"] = PodScript(log=chatter + "\n" + runner_log(summary_document(requests=700)))
    apply(cluster, load_test("chatty"))
    final = wait_status(cluster, "chatty", "the run is collected", phase="Succeeded")
    assert final["latest"]["requests"] == 700


@pytest.mark.parametrize("line, problem", [
    (summary_line("{not json"), "not JSON"),
    (summary_line('{"format": 1, "summary": {"requests": NaN}}'), "not JSON"),
    (summary_line("[" * 200_000), "not JSON"),
    (summary_line({"format": 1, "summary": "everything"}), "summary is str"),
    (summary_line({**a_good_record(), "summary": {**a_good_record()["summary"], "entries": [1, 2]}}),
     "summary.entries item is int"),
    (summary_line(a_good_record(requests="many")), "summary.requests is str"),
    (summary_line({**a_good_record(), "exit_code": {"a": 1}}), "exit_code is dict"),
    (summary_line(a_good_record(padding="y" * (run_summary.MAX_SUMMARY_BYTES + 10))), "characters, over"),
], ids=["not-json", "nan", "deep-nesting", "summary-a-string", "entries-not-objects", "requests-a-string",
        "exit-code-an-object", "over-the-length-limit"])
def test_a_malformed_summary_fails_the_run_once_and_the_operator_goes_on(cluster, line, problem):
    cluster.cluster.scripts["master"] = PodScript(log=f"starting\nsecret-token-from-a-mounted-file\n{line}\n")
    apply(cluster, load_test("forged"))
    final = wait_status(cluster, "forged", "the run fails", phase="Failed")
    assert problem in final["message"] and "currentRun" not in final, final["message"]
    # The log's words stay in the log (pods/log is guarded; status and Events are read more widely).
    assert "secret-token" not in final["message"] and "kubectl logs -n perf job/forged-1-master -c master" in \
        final["message"]
    assert any(c["reason"] == "NoSummary" for c in final["conditions"])
    events = wait_until(lambda: [e for e in objects(cluster, "events").values() if e.get("reason") == "NoSummary"],
                        what="a NoSummary Event")
    assert events[0]["type"] == "Warning"
    assert not objects(cluster, "loadtestresults")
    assert_the_next_load_test_still_runs(cluster, "after")


def test_a_gzip_bomb_in_the_report_is_refused_and_the_figures_are_kept(cluster):
    log = "\n".join(["starting", *gzip_bomb_lines(64), summary_line(a_good_record())]) + "\n"
    cluster.cluster.scripts["master"] = PodScript(log=log)
    apply(cluster, load_test("bomb"))
    final = wait_status(cluster, "bomb", "the run is collected", phase="Succeeded")
    assert final["latest"]["requests"] == 500
    (result,) = objects(cluster, "loadtestresults").values()
    assert "configMap" not in result["spec"]["report"] and not objects(cluster, "configmaps")


def test_a_result_with_thousands_of_endpoints_keeps_the_busiest_hundred(cluster):
    entries = [{"method": "GET", "name": f"/page/{n}", "requests": n, "failures": 0, "p95_ms": 1.0}
               for n in range(1, 2001)]
    cluster.cluster.scripts["master"] = PodScript(log=f"{summary_line(a_good_record(entries=entries))}\n")
    apply(cluster, load_test("wide"))
    wait_status(cluster, "wide", "the run is collected", phase="Succeeded")
    (result,) = objects(cluster, "loadtestresults").values()
    names = [e["name"] for e in result["spec"]["endpoints"]]
    assert len(names) == 100 and names[0] == "/page/2000" and names[-1] == "/page/1901"
