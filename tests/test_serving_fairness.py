"""Keep-alive connections take turns in a gevent worker (gunicorn_conf.post_request).

A greenlet yields only when a read would block. A connection whose next
requests are already in its socket would be served to the end before any
other connection's request: one client could hold a worker. Checked by order,
not by time: one worker, a connection with 300 pipelined requests (all in
the socket at once), then a single request on a second connection. Its
answer must come while most of the first connection's are still to be sent.
"""
from __future__ import annotations

import socket

import pytest

from devstack import Gunicorn, blog_environment

PIPELINED = 300


@pytest.fixture
def hello(tmp_path):
    server = Gunicorn(tmp_path, blog_environment(LOG_LEVEL="warning", METRICS_ENABLED="false"),
                      app="loadtests.hello_app:create_app()", name="hello", workers=1).start()
    yield server
    server.stop()


def _received(connection: socket.socket) -> bytes:
    """Everything the server has sent on ``connection`` so far (without waiting)."""
    connection.setblocking(False)
    data = b""
    try:
        while chunk := connection.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    connection.setblocking(True)
    return data


def test_a_connection_with_queued_requests_does_not_hold_the_worker(hello):
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", hello.port)) as busy, \
            socket.create_connection(("127.0.0.1", hello.port)) as other:
        busy.sendall(request * PIPELINED)
        other.sendall(request)
        other.settimeout(30)
        answer = b""
        while b"Hello, World!" not in answer:
            answer += other.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        served_first = _received(busy).count(b"HTTP/1.1 200")
        assert served_first < PIPELINED // 2, f"{served_first} of {PIPELINED} pipelined requests went first"
        # And the busy connection still gets every answer.
        busy.settimeout(30)
        data = b""
        while data.count(b"Hello, World!") < PIPELINED - served_first:
            data += busy.recv(1 << 20)
