"""Which values leave unscrubbed, keyed by what they belong to.

A field declared ``scrub=False`` (with its reason) is exempt where it is declared and nowhere
else: this command's parameter, this event's attribute, or an attribute declared for all spans,
metrics and events (which an event's own field of the same name overrides). ``hash`` fields
are exempt too: their values are digests the host made, which scrubbing could only corrupt.

Computed from the schema in the host, written to the manifest, and looked up by the sender
for each record by its owner (the command or event it belongs to).
"""

from __future__ import annotations

from phonehome._policy.schema import PARAM_PREFIX, Field, Schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _exempt(declared: Field | None) -> bool:
    return declared is not None and (not declared.scrub or declared.policy == "hash")


class Exemptions:
    """Attribute keys sent as they are, per command, per event, and for all."""

    __slots__ = ("attributes", "commands", "events")

    def __init__(
        self,
        commands: dict[str, frozenset[str]] | None = None,
        events: dict[str, frozenset[str]] | None = None,
        attributes: frozenset[str] = frozenset(),
    ) -> None:
        self.commands = commands or {}
        self.events = events or {}
        self.attributes = attributes

    @classmethod
    def of(cls, schema: Schema) -> Exemptions:
        """The exemptions a schema declares."""
        shared = frozenset(k for k, f in schema.attributes.items() if _exempt(f))
        commands = {
            name: frozenset(PARAM_PREFIX + p for p, f in params.items() if _exempt(f)) | shared
            for name, params in schema.commands.items()
        }
        events = {
            name: frozenset(
                k for k in {*attributes, *schema.attributes} if _exempt(schema.event_field(name, k))
            )
            for name, attributes in schema.events.items()
        }
        return cls(
            {k: v for k, v in commands.items() if v},
            {k: v for k, v in events.items() if v},
            shared,
        )

    def for_command(self, name: Any) -> frozenset[str]:
        return self.commands.get(name, self.attributes) if isinstance(name, str) else frozenset()

    def for_event(self, name: str) -> frozenset[str]:
        return self.events.get(name, frozenset()) if name else frozenset()

    def data(self) -> dict[str, Any]:
        """As the manifest keeps it (JSON)."""
        return {
            "commands": {k: sorted(v) for k, v in sorted(self.commands.items())},
            "events": {k: sorted(v) for k, v in sorted(self.events.items())},
            "attributes": sorted(self.attributes),
        }

    @classmethod
    def from_data(cls, data: Any) -> Exemptions:
        """From the manifest; anything malformed exempts nothing (everything is scrubbed)."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                {str(k): frozenset(map(str, v)) for k, v in data.get("commands", {}).items()},
                {str(k): frozenset(map(str, v)) for k, v in data.get("events", {}).items()},
                frozenset(map(str, data.get("attributes", ()))),
            )
        except (AttributeError, TypeError):
            return cls()
