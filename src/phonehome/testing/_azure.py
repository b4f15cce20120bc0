"""An Azure Monitor ingestion stub: what the real exporter posts to ``/v2.1/track``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from phonehome.testing._server import LoopbackServer


class AzureIngestion(LoopbackServer):
    """An ingestion endpoint on 127.0.0.1 that accepts and keeps every envelope.

    Point the real exporter at it with :attr:`connection_string`. ``envelopes`` holds what
    arrived (the JSON the exporter sent, one dict per telemetry item).
    """

    def __init__(self, instrumentation_key: str | None = None, port: int = 0) -> None:
        super().__init__(port)
        self.instrumentation_key = instrumentation_key or str(uuid.uuid4())
        self.envelopes: list[dict[str, Any]] = []

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
        with self._cond:
            self.envelopes.extend(items)
        reply = {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
        return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        """The ``baseData`` of every envelope of one type (``RemoteDependencyData``, ...)."""
        return [
            e["data"]["baseData"]
            for e in self.envelopes
            if e.get("data", {}).get("baseType") == base_type
        ]
