"""wrk_run: the bench's C load generator, run for real against a tiny local server."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests import wrk_run


class Pages(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        body = b"hello" if self.path == "/" else b"missing"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_run_reports_throughput_and_the_latency_distribution(server):
    result = wrk_run.run(server + "/", connections=2, seconds=1, threads=1)
    assert result["requests"] > 10 and result["throughput_rps"] > 10
    latency = result["latency_ms"]
    assert set(latency) == {"p50", "p75", "p90", "p99"} and 0 < latency["p50"] <= latency["p99"] < 1000
    assert result["non_2xx_3xx"] == 0 and result["socket_errors"] == 0


def test_error_answers_are_counted(server):
    result = wrk_run.run(server + "/missing", connections=2, seconds=1, threads=1)
    assert result["requests"] > 0 and result["non_2xx_3xx"] == result["requests"]


def test_compare_gives_the_share_of_the_ceiling_and_the_p99_multiple():
    page = {"throughput_rps": 900.0, "latency_ms": {"p99": 30.0}}
    ceiling = {"throughput_rps": 1000.0, "latency_ms": {"p99": 20.0}}
    assert wrk_run.compare(page, ceiling) == {"ceiling_ratio": 0.9, "p99_vs_ceiling": 1.5}
    assert wrk_run.compare(page, {}) == {"ceiling_ratio": None, "p99_vs_ceiling": None}


def test_output_that_is_no_report_is_refused_and_units_are_read():
    with pytest.raises(ValueError, match="not a wrk report"):
        wrk_run.parse("unable to connect to 127.0.0.1:1 Connection refused\n")
    report = ("  Latency Distribution\n     50%  750.00us\n     75%    1.50ms\n     90%    2.00s\n     99%    1.00m\n"
              "  10 requests in 1.00s, 1.00KB read\nRequests/sec:     10.00\n")
    assert wrk_run.parse(report)["latency_ms"] == {"p50": 0.75, "p75": 1.5, "p90": 2000.0, "p99": 60000.0}


def test_it_only_loads_this_machine():
    with pytest.raises(ValueError, match="only against this machine"):
        wrk_run.run("http://example.com/", connections=1, seconds=1)
