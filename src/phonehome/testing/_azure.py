"""An Azure Monitor ingestion stub: what the real exporter posts to ``/v2.1/track``."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Callable
from typing import Any

from phonehome.testing._server import LoopbackServer


class AzureIngestion(LoopbackServer):
    """An ingestion endpoint on 127.0.0.1 that accepts and keeps every envelope.

    Point the real exporter at it with :attr:`connection_string`. ``envelopes`` holds what
    arrived (the JSON the exporter sent, one dict per telemetry item). ``refuse`` makes a
    partial acceptance (206): called with each item, it returns the status code to refuse
    that item with (retryable: 408, 429, 500, 503; anything else for good) or ``None`` to
    accept it. Only accepted items are kept.
    """

    def __init__(
        self,
        instrumentation_key: str | None = None,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(port, ssl_context)
        self.instrumentation_key = instrumentation_key or str(uuid.uuid4())
        self.envelopes: list[dict[str, Any]] = []
        self.refuse: Callable[[dict[str, Any]], int | None] | None = None

    @property
    def connection_string(self) -> str:
        return f"InstrumentationKey={self.instrumentation_key};IngestionEndpoint={self.url}/"

    def handle(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if self.status != 200:
            return self.status, {}, b""
        if not path.rstrip("/").endswith("/track"):
            return 404, {}, b""
        items = json.loads(body)
        if isinstance(items, dict):
            items = [items]
        refuse = self.refuse
        refused = [(i, refuse(item)) for i, item in enumerate(items)] if refuse else []
        errors = [
            {"index": i, "statusCode": code, "message": f"refused with {code} by the test"}
            for i, code in refused
            if code is not None
        ]
        failed = {e["index"] for e in errors}
        with self._cond:
            self.envelopes.extend(item for i, item in enumerate(items) if i not in failed)
        reply = {
            "itemsReceived": len(items),
            "itemsAccepted": len(items) - len(errors),
            "errors": errors,
        }
        body = json.dumps(reply).encode()
        return (206 if errors else 200), {"Content-Type": "application/json"}, body

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        """The ``baseData`` of every envelope of one type (``RemoteDependencyData``, ...)."""
        return [
            e["data"]["baseData"]
            for e in self.envelopes
            if e.get("data", {}).get("baseType") == base_type
        ]
