"""Serving over HTTP against slow and hostile clients: uvicorn with a guarded HTTP/1.1 protocol.

uvicorn's h11 protocol waits for a request's headers and body as long as the client likes and
answers an oversized header block with a 400 and an immediate close (which the client sees as a
connection reset). :class:`GuardedH11Protocol` adds:

- a deadline for the header block of each request (``header_timeout``, from its first byte, or
  from the connection's start for the first request): a slow client gets ``408`` and is closed;
- an idle limit while the body is read (``body_timeout`` between two chunks): ``408``;
- ``431 Request Header Fields Too Large`` for a header block over ``max_header_bytes``, sent
  while the rest of the request is read and thrown away, so the client can read it.

:func:`run` binds the socket before saying anything, so a busy port is one clear error, and
serves the app with this protocol until Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from collections.abc import Callable

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DRAIN_SECONDS = 2.0
"""How long the rest of a refused request is read (and dropped) before the connection closes."""


@dataclasses.dataclass(frozen=True)
class HttpLimits:
    """Per-connection limits (seconds and bytes)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 32 * 1024
    keep_alive: float = 5.0


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with header and body deadlines and a 431 (see the module)."""

    limits: HttpLimits = HttpLimits()

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer = None
        self._draining = False
        self._arm(self.limits.header_timeout, "the request headers did not arrive in time")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._draining:
            return
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:  # still in a request's headers
            if self._timer is None:
                self._arm(self.limits.header_timeout, "the request headers did not arrive in time")
        elif state is h11.SEND_BODY:  # reading the body: an idle limit between chunks
            self._disarm()
            self._arm(self.limits.body_timeout, "the request body stopped arriving")
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, h11.RemoteProtocolError) and exc.error_status_hint == 431:
            why = "the request headers are too large"
            self._refuse(431, "Request Header Fields Too Large", why)
        else:
            self._refuse(400, "Bad Request", msg)

    # -- internals ----------------------------------------------------------------------------
    def _arm(self, seconds: float, why: str) -> None:
        self._timer = self.loop.call_later(seconds, self._expired, why)

    def _disarm(self) -> None:
        if getattr(self, "_timer", None) is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, why: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._refuse(408, "Request Timeout", why)

    def _refuse(self, status: int, reason: str, text: str) -> None:
        """Answer ``status`` (closing), keep reading and dropping what the client still sends
        for :data:`DRAIN_SECONDS`, then close."""
        self._disarm()
        body = (text + "\n").encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self._draining = True
        if self.cycle is not None:
            self.cycle.keep_alive = False
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)


def guarded_protocol(limits: HttpLimits) -> type[GuardedH11Protocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"limits": limits})


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``.

    Raises:
        OSError: the address cannot be bound (in use, not this machine's, no permission).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run(
    app,
    sock: socket.socket,
    limits: HttpLimits = HttpLimits(),
    log_level: str = "warning",
    on_start: Callable[[], None] | None = None,
) -> None:
    """Serve ``app`` on the bound ``sock`` with :class:`GuardedH11Protocol` until Ctrl-C."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_keep_alive=int(max(1, limits.keep_alive)),
        log_level=log_level,
    )
    server = uvicorn.Server(config)
    if on_start is not None:
        on_start()
    server.run(sockets=[sock])
