"""The store writer: an OTLP/HTTP endpoint on loopback that commits what it receives.

Rotel forwards to it. A request is answered 200 only once its rows are committed to the
store; anything else is answered 503 so that Rotel sends it again (delivery is at least once:
the questions count each span, record and point once). It runs as its own process
(``python -m phonehome._tools.insights.writer --store PATH --port N``), so that the collector
can restart it if it dies.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from phonehome._tools.insights.otlp import DECODERS
from phonehome._tools.insights.store import Store, StoreError

MAX_BODY = 64 * 1024 * 1024
"""The largest request accepted (Rotel's batches are far smaller)."""


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_BODY:
        raise ValueError("request too large")
    body = handler.rfile.read(length)
    encoding = (handler.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        kind = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        decode = DECODERS.get(kind)
        if decode is None:
            self._answer(404)
            return
        try:
            rows = decode(_body(self))
        except Exception:
            self._answer(400)  # malformed: sending it again cannot help
            return
        try:
            self.server.store.insert(rows)
        except Exception:
            self._answer(503)
            return
        self.server.committed += sum(len(r) for r in rows.values())
        self._answer(200)

    def do_GET(self) -> None:
        """``/status``: the rows committed since this writer started, as a number."""
        if self.path != "/status":
            self._answer(404)
            return
        body = str(self.server.committed).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(HTTPServer):
    def __init__(self, port: int, store: Store) -> None:
        self.store = store
        self.committed = 0
        super().__init__(("127.0.0.1", port), _Handler)


def serve(store_path: Path, port: int) -> None:
    """Serve until SIGTERM or SIGINT; the store is closed (checkpointed) on the way out."""
    import signal
    import threading

    store = Store(store_path)
    server = _Server(port, store)

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="phonehome-store-writer")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        serve(args.store, args.port)
    except (StoreError, OSError) as error:
        print(f"store writer: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
