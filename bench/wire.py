"""A minimal HTTP/1.1 keep-alive client over one socket, for load generation.

Like ``wrk``, it sends requests encoded once up front and reads answers framed by
``content-length``: a few µs of client CPU per request instead of the ~200 µs that
``http.client`` spends building and parsing headers. The client shares this machine's
2 cores with the server, so every µs it does not spend is a µs the server can use.
It speaks just enough HTTP for the bench: no chunked answers, no redirects.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping


class WireError(RuntimeError):
    pass


def encode_request(
    method: str, path: str, *, host: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


class Connection:
    def __init__(self, host: str, port: int, *, timeout: float = 120.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.pending = b""

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send one encoded request; the status and body of its answer."""
        self.sock.sendall(request)
        data = self.pending
        end = data.find(b"\r\n\r\n")
        while end < 0:
            data += self._recv()
            end = data.find(b"\r\n\r\n")
        head = data[:end].lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            raise WireError(f"answer without content-length: {head[:200]!r}")
        line_end = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : line_end if line_end > 0 else len(head)])
        start = end + 4
        while len(data) - start < length:
            data += self._recv()
        self.pending = data[start + length :]
        return status, data[start : start + length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise WireError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()
