"""Where ``bastion serve`` listens: the port, bound before anything else is done, and a
uvicorn server that reports when it really accepts connections.

A port that cannot be had (in use, not an address of this machine, privileged) fails
before the data folder is touched or a setup link is printed. A bound socket refuses
connections until uvicorn listens on it, once the app has started (collections loaded),
and only then is "listening" printed.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import uvicorn

from bastion.errors import ConfigurationError


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening), or one clear error."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise ConfigurationError(f"cannot listen on {host}: not a known address") from None
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        reasons = {
            errno.EADDRINUSE: "the port is already in use (another server?); stop it or "
            "choose another --port",
            errno.EADDRNOTAVAIL: "that address is not one of this machine's",
            errno.EACCES: "permission denied (ports below 1024 need privileges)",
        }
        reason = reasons.get(exc.errno or 0, exc.strerror or "unknown error")
        raise ConfigurationError(f"cannot listen on {host}:{port}: {reason}") from None
    return listener


def check_tls(cert: Path, key: Path) -> None:
    """Load the certificate and key as uvicorn will, to fail with one line instead."""
    for path in (cert, key):
        if not path.is_file():
            raise ConfigurationError(f"TLS file {path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError:
        raise ConfigurationError(
            f"the TLS certificate {cert} and key {key} do not load: not PEM, or the key "
            "is not the certificate's"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the TLS files: {exc.strerror}") from None


class ReadyServer(uvicorn.Server):
    """A uvicorn server that calls ``on_ready`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], object]) -> None:
        super().__init__(config)
        self.on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_ready()
