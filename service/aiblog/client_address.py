"""The client's real address behind reverse proxies, for the per-address limits.

Behind an ingress every request arrives from the proxy, so without this the
per-address limits would be one limit for the whole site. ``X-Forwarded-For``
is read only when the direct peer is a trusted proxy (``FORWARDED_ALLOW_IPS``)
and only as deep as ``TRUSTED_PROXY_HOPS``: each trusted proxy appends the
address it saw, so the client is the hops-th entry from the right. Entries
further left were written by the client and are never believed.
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Iterable


def trusted_networks(allowed: str) -> list | None:
    """The trusted peers of a FORWARDED_ALLOW_IPS value; None means any (``*``).
    Raises ValueError naming an entry that is no address or network."""
    networks, anyone = [], False
    for part in (p.strip() for p in allowed.split(",")):
        if part == "*":
            anyone = True
        elif part:
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"expected addresses or networks (or *), got {part!r}") from None
    return None if anyone else networks


def _is_trusted(peer: str, networks: list | None) -> bool:
    if networks is None:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # a unix socket peer, for example
        return False
    return any(address in network for network in networks)


def client_address(peer: str, forwarded_for: Iterable[str], hops: int, networks: list | None) -> str:
    """The address to limit by. ``forwarded_for``: every X-Forwarded-For header, in order."""
    if hops <= 0 or not _is_trusted(peer, networks):
        return peer
    chain = [entry.strip() for header in forwarded_for for entry in header.split(",") if entry.strip()]
    if len(chain) < hops:
        # Fewer entries than proxies: the request skipped a proxy, so the
        # header is the client's own words. Limit the peer that sent it.
        return peer
    candidate = chain[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


class TrustedProxies:
    """WSGI middleware: REMOTE_ADDR becomes the client address, the proxy's is kept
    in ``aiblog.peer_addr``."""

    def __init__(self, app: Callable, hops: int, allowed: str):
        self.app = app
        self.hops = hops
        self.networks = trusted_networks(allowed)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR", "")
        environ["aiblog.peer_addr"] = peer
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        if forwarded:
            environ["REMOTE_ADDR"] = client_address(peer, [forwarded], self.hops, self.networks)
        return self.app(environ, start_response)
