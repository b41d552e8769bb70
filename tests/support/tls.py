"""TLS on loopback for tests: a throwaway CA and a server certificate for
127.0.0.1 (made with the openssl command), and a TLS front that forwards each
connection to a plain-HTTP server, as an ingress or the API server's
certificate would put TLS in front of what the tests run."""
from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certificates:
    ca: Path      # what a client trusts (PEM)
    cert: Path    # the server's certificate for 127.0.0.1, signed by the CA
    key: Path


def make_certificates(folder: Path) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key, cert, key, csr = (folder / n for n in ("ca.crt", "ca.key", "server.crt", "server.key", "server.csr"))
    extensions = folder / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=aiblog test CA",
            "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(extensions), "-out", str(cert))
    for path in (ca, cert, key):
        path.chmod(0o644)   # read by the container's non-root user too
    return Certificates(ca, cert, key)


class TLSFront:
    """Accepts TLS on a free 127.0.0.1 port and pipes each connection, both
    ways, to ``127.0.0.1:target_port`` in plain text. Streams (watches, SSE)
    pass through as they come."""

    def __init__(self, certificates: Certificates, target_port: int):
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates.cert, certificates.key)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="tls-front").start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(raw, server_side=True)
            backend = socket.create_connection(("127.0.0.1", self.target_port))
        except (OSError, ssl.SSLError):
            raw.close()
            return
        def pipe(source: socket.socket, sink: socket.socket) -> None:
            try:
                while chunk := source.recv(65536):
                    sink.sendall(chunk)
            except (OSError, ssl.SSLError):
                pass

        threading.Thread(target=pipe, args=(backend, secure), daemon=True).start()
        pipe(secure, backend)   # until the client closes; closing both ends the other direction
        for end in (secure, backend):
            try:
                end.close()
            except OSError:
                pass

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
