"""The metrics server in the gunicorn master bounds its connections (issue 12,
item 9): many clients that connect and send nothing cannot pin the master's
threads, are dropped after METRICS_CONNECTION_TIMEOUT, and /metrics still
answers promptly (the oldest silent connection makes room for a new one)."""
from __future__ import annotations

import socket

import httpx

from devstack import Gunicorn, wait_until
from tests.conftest import blog_env

SILENT_CLIENTS = 100
MAX_CONNECTIONS = 8
CONNECTION_TIMEOUT = 4  # seconds


def thread_count(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith("Threads:")).split()[1])


def closed_by_server(connection: socket.socket) -> bool:
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


def test_silent_clients_cannot_pin_the_master_and_metrics_still_answer(sqlite_url, tmp_path):
    # The scrapes below give up long before a silent connection would time out: an
    # answer proves a silent client was dropped to make room, not waited out.
    env = blog_env(DATABASE_URL=sqlite_url, REDIS_URL="", METRICS_MAX_CONNECTIONS=str(MAX_CONNECTIONS),
                   METRICS_CONNECTION_TIMEOUT=str(CONNECTION_TIMEOUT))
    with Gunicorn(tmp_path, env, workers=1) as server:
        threads_before = thread_count(server.process.pid)
        silent = [socket.create_connection(("127.0.0.1", server.metrics_port)) for _ in range(SILENT_CLIENTS)]
        try:
            for _ in range(3):
                response = httpx.get(server.metrics_url, timeout=CONNECTION_TIMEOUT / 2)
                assert response.status_code == 200 and "blog_process_cpu_seconds" in response.text
            threads = thread_count(server.process.pid)
            assert threads <= threads_before + MAX_CONNECTIONS + 1, f"{threads} threads in the master"
            for connection in silent:
                connection.setblocking(False)
            wait_until(lambda: all(closed_by_server(c) for c in silent), timeout=CONNECTION_TIMEOUT + 10,
                       what="the server closes every silent connection")
        finally:
            for connection in silent:
                connection.close()
