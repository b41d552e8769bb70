"""Just enough of the Redis protocol (RESP) for the metrics server's reads.

Why not redis-py: the metrics server runs in the gunicorn master, and every
module the master imports is inherited by the gevent workers it forks later.
redis-py imports its asyncio client, which holds direct references into
``ssl``; gevent then warns in every worker that ssl was imported before it
could patch it. The server only needs a few commands with integer or status
replies, so it speaks the protocol itself.
"""
from __future__ import annotations

import socket
import ssl
import threading
from urllib.parse import parse_qs, unquote, urlsplit


class RespError(Exception):
    """An error reply from Redis, or a URL this client cannot use."""


class RespClient:
    def __init__(self, url: str, timeout: float = 1.0):
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise RespError(f"unsupported Redis URL scheme {parts.scheme!r} (redis, rediss or unix)")
        self.scheme = parts.scheme
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.path = parts.path
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        if parts.scheme == "unix":
            self.db = int(query.get("db", ["0"])[0])
        else:
            self.db = int(parts.path.lstrip("/") or query.get("db", ["0"])[0])
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._reader = None
        self._lock = threading.Lock()  # scrapes may overlap; one reply per request

    def command(self, *args: object) -> int | str:
        with self._lock:
            try:
                if self._sock is None:
                    self._connect()
                return self._roundtrip(args)
            except OSError:  # connection lost: reconnect on the next call
                self.close()
                raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def _connect(self) -> None:
        if self.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        else:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.scheme == "rediss":
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        self._sock, self._reader = sock, sock.makefile("rb")
        if self.password:
            self._roundtrip(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
        if self.db:
            self._roundtrip(("SELECT", self.db))

    def _roundtrip(self, args) -> int | str:
        encoded = [str(arg).encode() for arg in args]
        self._sock.sendall(b"*%d\r\n" % len(encoded)
                           + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in encoded))
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("Redis closed the connection")
        kind, value = line[:1], line[1:-2]
        if kind == b":":
            return int(value)
        if kind == b"+":
            return value.decode()
        if kind == b"-":
            raise RespError(value.decode(errors="replace"))
        raise RespError(f"unexpected reply type {kind!r} (only integer and status replies are read)")
