"""The HTTP/1.1 protocol ``scorecast serve`` runs uvicorn with: uvicorn's h11 protocol plus a time
limit for receiving a request's headers.

uvicorn closes idle keep-alive connections, but a client that sends part of its headers and then
nothing holds a connection (and a slot) for as long as it likes. :class:`HeaderTimeoutProtocol`
answers 408 and closes the connection when a request's headers have not all arrived within
``header_timeout_s`` of the connection opening (or of the previous answer on a kept-alive one).
The body has its own limit, enforced by the app while it reads (:func:`scorecast.serve.requests.read_body`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_timeout_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.run(..., http=...)`` with the given header time limit."""

    class Protocol(HeaderTimeoutProtocol):
        timeout_s = float(header_timeout_s)

    return Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """See the module docstring; ``timeout_s`` is set by :func:`header_timeout_protocol`."""

    timeout_s: float = 10.0
    refused = 0  # connections answered 408 for slow headers (all instances; for the benchmark)

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.timeout_s, self._header_deadline)

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.conn.their_state is not h11.IDLE:  # the headers arrived: the request is under way
            return
        pending = bool(self.conn.trailing_data[0]) if hasattr(self.conn, "trailing_data") else True
        if not pending:  # an idle kept-alive connection: close it quietly (uvicorn's keep-alive does too)
            self.transport.close()
            return
        type(self).refused += 1
        body = (
            f"request headers did not all arrive within {self.timeout_s:g} s; "
            "the server closed the connection (send the whole request promptly)"
        ).encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.transport.close()
