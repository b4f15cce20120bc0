"""A small HTTP server on 127.0.0.1 with an ephemeral port, run in a thread."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class Capture:
    """What every capture server shares: a condition notified as requests arrive,
    :meth:`wait_until`, and ``with server:`` to start and stop it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition()`` holds (checked after each request) or the timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))
            return True

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoopbackServer(Capture):
    """Base for the HTTP capture servers: ``with Server() as s: s.url``.

    Subclasses implement :meth:`handle`, which gets the path, the request headers and the
    decoded body, and returns the status code, the response headers and the body. With
    ``ssl_context`` (a server-side ``ssl.SSLContext``) it serves HTTPS.
    """

    def __init__(self, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.status = 200
        """The status code to answer with (for fault tests)."""
        self.retry_after: str | None = None
        """A ``Retry-After`` header to send with an error status."""
        self.delay = 0.0
        """Seconds to wait before answering (a slow destination)."""
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies: list[bytes] = []
        """Every request's body, decompressed: what went over the wire."""
        self._httpd = _Quiet(("127.0.0.1", port), _Handler)
        self._httpd.owner = self
        self._httpd.daemon_threads = True
        self._scheme = "http"
        if ssl_context is not None:
            self._scheme = "https"
            self._httpd.socket = ssl_context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    """Records each request in its ``LoopbackServer`` and answers as it says."""

    protocol_version = "HTTP/1.1"
    server: _Quiet

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner._cond:
            owner.requests.append((self.path, headers))
            owner.bodies.append(body)
        if owner.delay:
            time.sleep(owner.delay)  # a slow destination, on purpose
        try:
            status, reply_headers, reply = owner.handle(self.path, headers, body)
        except Exception as error:  # a decoding bug must show up in the test
            status, reply_headers, reply = 400, {}, str(error).encode()
        self.send_response(status)
        if status != 200 and owner.retry_after is not None:
            self.send_header("Retry-After", owner.retry_after)
        for key, value in reply_headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        with owner._cond:
            owner._cond.notify_all()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Quiet(ThreadingHTTPServer):
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is part of the tests, not an error."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
