"""How `serve` runs the app on uvicorn: connection timeouts, malformed requests, and workers that end
with their parent.

* uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but only once a
  response has been sent, and any byte received cancels that timer: a connection that never
  sends a request, or sends its headers (or its body) one byte at a time, is held open forever.
  The protocol below gives every request's headers `HEADER_TIMEOUT_SECONDS` to arrive, then its
  body `BODY_TIMEOUT_SECONDS` more, then closes the connection.
* A request that is not HTTP/1.1 at all (a malformed request line or header, a bad chunk) gets
  uvicorn's own `400` in `text/plain`; here it gets a 422 in the sandbox's error shape instead
  (the platform answers no 400s), and the connection is closed, as uvicorn does.
* Worker processes of `serve --workers N` are children of the parent's process; after a
  `kill -9` of the parent they would go on holding the port. Each asks the kernel to end it
  when its parent dies (Linux's PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import envelope
from .errors import SandboxError

HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
_PR_SET_PDEATHSIG = 1
log = logging.getLogger("pokitdok_sandbox")


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers, or body, do not arrive
    in time, and answering malformed requests in the sandbox's error shape."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    body_timeout = BODY_TIMEOUT_SECONDS
    _header_timer = None
    _body_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm_body_timer()
        super().on_message_complete()

    def _disarm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if not self.transport.is_closing():
            self.transport.close()  # the app reading the body sees the client disconnect

    def send_400_response(self, msg: str) -> None:
        if self.cycle is not None and self.cycle.response_started:  # (a bad chunk after the answer began)
            self.transport.close()
            return
        error = SandboxError(422, f"the request is not valid HTTP/1.1 ({msg.rstrip('.')}); send a well-formed "
                                  "request line, headers and body", None, "malformed_request")
        body = envelope.encode(error.body(envelope.meta(None)))
        self.transport.write(b"".join([
            b"HTTP/1.1 422 Unprocessable Entity\r\n",
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n", body]))
        self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets the same time

    def connection_lost(self, exc) -> None:
        self._disarm_header_timer()
        self._disarm_body_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(host: str, port: int, log_level: str, access_log: bool) -> dict:
    return dict(host=host, port=port, log_level=log_level, access_log=access_log,
                http=HeaderTimeoutProtocol, timeout_keep_alive=KEEP_ALIVE_SECONDS,
                # h11's default 16 KiB line limit would answer a long query string with a bare
                # text 400; let it through so the sandbox refuses it in its own error shape.
                h11_max_incomplete_event_size=1024 * 1024)


def listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else starts (an address in use raises OSError here,
    not after the banner); port 0 binds a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        listener.bind((host, port))
    except BaseException:
        listener.close()
        raise
    return listener


def run(app, listener: socket.socket, options: dict) -> None:
    """Serve `app` on the bound `listener` in this process until interrupted."""
    import uvicorn

    options = {k: v for k, v in options.items() if k not in ("host", "port")}
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[listener])


def end_with_parent() -> None:
    """In a worker process: be ended (SIGTERM) when the parent dies, even by `kill -9`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):  # not Linux: nothing to ask for
        return
    if os.getppid() == 1:  # the parent died before the request above
        os.kill(os.getpid(), signal.SIGTERM)
