"""The manifest (``<state>/config.json``): what the host tells the sender beside the records.

Written by a run with consent on, read by a sender that may start later, from another shell,
or be of another version: where to deliver (each destination with its credentials, under a
key that does not show them), the inputs of the consent decision (so the sender decides again
before sending), the spool's caps, which fields the schema exempts from scrubbing, and
whether the first-run notice has been confirmed.
"""

from __future__ import annotations

import os
import zlib

from phonehome._core import jsontext
from phonehome._core import state as statefiles
from phonehome._core.destinations import Destination
from phonehome._core.settings import (
    DEFAULT_AUTOMATION,
    DEFAULT_CONSENT,
    DEFAULT_SPOOL_MAX_AGE,
    DEFAULT_SPOOL_MAX_BYTES,
)

MANIFEST_FILE = "config.json"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from phonehome._core.destinations import Role


def destination_key(role: Role, destination: Destination) -> str:
    """A stable name for a destination's progress, without its credentials in clear.

    Two CRC-32s (64 bits) of its settings: a name, not a secret, and ``zlib`` is already
    loaded for the spool where ``hashlib`` would cost a CLI ~10 ms of OpenSSL start-up.
    """
    data = jsontext.dumps([role, destination._asdict()], sort_keys=True, default=str).encode()
    return f"{role}-{zlib.crc32(data):08x}{zlib.crc32(data[::-1]):08x}"


def destination(entry: dict[str, Any]) -> Destination:
    """A destination as the manifest stores it."""
    fields = {k: v for k, v in entry.items() if k in Destination._fields}
    fields["headers"] = tuple(tuple(pair) for pair in fields.get("headers", ()))
    fields["environment"] = tuple(tuple(pair) for pair in fields.get("environment", ()))
    return Destination(**fields)


class Manifest:
    """The manifest's fields, named (``data`` is what ``config.json`` holds)."""

    __slots__ = ("data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @classmethod
    def build(
        cls,
        *,
        product: str,
        prefix: str,
        consent: str,
        enabled: bool | None,
        automation: str,
        max_bytes: int,
        max_age: float,
        metric_prefix: str,
        resource: dict[str, Any],
        destinations: dict[str, tuple[Role, Destination]],
        exemptions: dict[str, Any],
        notice_confirmed: bool,
    ) -> Manifest:
        return cls(
            {
                "product": product,
                "prefix": prefix,
                "consent": consent,
                "enabled": enabled,
                "automation": automation,
                "max_bytes": max_bytes,
                "max_age": max_age,
                "metric_prefix": metric_prefix,
                "resource": resource,
                "destinations": {
                    key: {"role": role, **d._asdict()} for key, (role, d) in destinations.items()
                },
                "exemptions": exemptions,
                "notice_confirmed": notice_confirmed,
            }
        )

    @property
    def prefix(self) -> str:
        return str(self.data.get("prefix", ""))

    @property
    def consent(self) -> str:
        return str(self.data.get("consent", DEFAULT_CONSENT))

    @property
    def enabled(self) -> bool | None:
        value = self.data.get("enabled")
        return value if isinstance(value, bool) else None

    @property
    def automation(self) -> str:
        return str(self.data.get("automation", DEFAULT_AUTOMATION))

    @property
    def max_bytes(self) -> int:
        return int(self.data.get("max_bytes", DEFAULT_SPOOL_MAX_BYTES))

    @property
    def max_age(self) -> float:
        return float(self.data.get("max_age", DEFAULT_SPOOL_MAX_AGE))

    @property
    def resource(self) -> dict[str, Any]:
        value = self.data.get("resource", {})
        return value if isinstance(value, dict) else {}

    @property
    def destination_entries(self) -> dict[str, dict[str, Any]]:
        """Each destination's stored settings, by key (``role`` included)."""
        value = self.data.get("destinations", {})
        return value if isinstance(value, dict) else {}

    def destinations(self) -> dict[str, Destination]:
        return {key: destination(entry) for key, entry in self.destination_entries.items()}

    def role(self, key: str) -> str:
        return str(self.destination_entries.get(key, {}).get("role", "?"))

    @property
    def exemptions(self) -> Any:
        """The schema's scrubbing exemptions by owner (``phonehome._policy.exemptions``), as
        stored; an older manifest's flat list is not read: everything is scrubbed."""
        return self.data.get("exemptions")

    @property
    def notice_confirmed(self) -> bool:
        return self.data.get("notice_confirmed") is True

    def text(self) -> str:
        return jsontext.dumps(self.data, sort_keys=True, default=str)


def load(state_dir: statefiles.StrPath) -> Manifest | None:
    """The manifest the last run wrote, or ``None`` if there is none or it is unreadable."""
    try:
        with open(os.path.join(state_dir, MANIFEST_FILE), encoding="utf-8") as file:
            data = jsontext.loads(file.read())
    except (OSError, ValueError):
        return None
    return Manifest(data) if isinstance(data, dict) and "prefix" in data else None


def write(state_dir: statefiles.StrPath, manifest: Manifest) -> None:
    """Write the manifest, unless the file already says the same (most runs)."""
    text = manifest.text()
    path = os.path.join(state_dir, MANIFEST_FILE)
    if statefiles.read_text(path) != text:
        statefiles.write_text(path, text)
