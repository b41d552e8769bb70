"""Loopback ports: a free one, whether one is open, who holds it, and whether
a URL there answers. Everything here listens on or calls 127.0.0.1 only."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def port_holder(port: int) -> str | None:
    """``"NAME (pid N)"`` of the process listening on 127.0.0.1/any address at
    ``port``, read from /proc (Linux); None when it cannot be seen."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                name = (proc / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
                return f"{Path(name).name or '?'} (pid {proc.name})"
        except OSError:   # gone, or not ours to read
            continue
    return None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether ``url`` answers 200 (False while nothing listens there)."""
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
