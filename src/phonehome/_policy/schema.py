"""The telemetry schema: every field that may leave the process, with a value policy.

Declared in code (:class:`Schema`, :func:`field`) or in a TOML file shipped with the
product. Enforced on every record before it is spooled: an undeclared attribute never
leaves the process; it is dropped and counted (and raises in tests).

Policies: ``raw`` (as is), ``enum`` (listed values, anything else becomes ``other``),
``hash`` (salted SHA-256; the salt is per install and never sent), ``presence`` (only that
it was given: the default for command parameters), ``drop`` (never leaves, not even its
name).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from phonehome._core.errors import SchemaError

TOP_LEVEL = ("commands", "events", "attributes", "exception_messages")
"""The sections of a schema file (schema-wide settings are listed here too)."""
COMMAND_KEYS = ("description", "params")
EVENT_KEYS = ("description", "attributes")
FIELD_KEYS = ("type", "description", "policy", "values", "scrub", "reason")
"""What a file may say at each level; anything else is refused, naming these."""

POLICIES = ("raw", "enum", "hash", "presence", "drop")
TYPES = ("string", "int", "float", "bool", "list")
VALUE_POLICIES = frozenset(("raw", "enum", "hash"))
OTHER = "other"
PARAM_PREFIX = "command.param."
"""The attribute key of a command parameter's value: ``command.param.<name>``."""


class Field:
    """One declared field: its type, what it means, and how its value may leave."""

    __slots__ = ("description", "given", "policy", "reason", "scrub", "type", "values")

    def __init__(
        self,
        type: str = "string",
        description: str = "",
        *,
        policy: str | None = None,
        values: Iterable[str] | None = None,
        scrub: bool = True,
        reason: str = "",
    ) -> None:
        if type not in TYPES:
            raise _invalid(f"type {type!r} is not one of {', '.join(TYPES)}")
        given = policy is not None or bool(values)
        policy = policy if policy is not None else ("enum" if values else "raw")
        if policy not in POLICIES:
            raise _invalid(f"policy {policy!r} is not one of {', '.join(POLICIES)}")
        if values is not None and (
            isinstance(values, str) or not all(isinstance(v, str) for v in values)
        ):
            raise _invalid("values must be a list of strings")
        if policy == "enum" and not values:
            raise _invalid("policy 'enum' needs its list of values")
        if not scrub and not reason:
            raise _invalid("scrub=False needs a reason: it is the audited escape hatch")
        self.type = type
        self.description = description
        self.policy = policy
        self.given = given
        """Whether the policy was declared (listing ``values`` declares ``enum``); a command
        parameter without one is ``presence``."""
        self.values = frozenset(values) if values else None
        self.scrub = scrub
        self.reason = reason

    def __repr__(self) -> str:
        return f"field({self.type!r}, policy={self.policy!r})"

    def with_policy(self, policy: str) -> Field:
        """The same field under another policy."""
        changed = Field(
            self.type,
            self.description,
            policy=policy,
            values=self.values,
            scrub=self.scrub,
            reason=self.reason,
        )
        changed.given = self.given
        return changed

    def describe(self) -> str:
        if self.policy == "enum":
            return "one of " + ", ".join(sorted(self.values or ())) + f", else `{OTHER}`"
        return {
            "raw": "as given",
            "hash": "salted SHA-256",
            "presence": "whether given",
            "drop": "never sent",
        }[self.policy]


field = Field
"""Declare a field: ``field("string", "what it is", policy="enum", values=[...])``.

Without a ``policy``: ``presence`` for a command parameter (only whether it was given),
``raw`` for an event's or span's attribute (``enum`` when ``values`` are listed).
``scrub=False`` (with a ``reason``) exempts it from scrubbing."""


_PRESENCE = Field("string", "", policy="presence")


class Schema:
    """What a product may send: commands with their parameters, events with their
    attributes, and attributes for spans and metrics.

    Args:
        commands: ``{command: {parameter: field}}``; a parameter not listed, or listed
            without a policy, is recorded by name only (``presence``); ``collect=`` on
            ``command()`` means ``raw``.
        events: ``{event: {attribute: field}}``.
        attributes: fields allowed on spans, metrics and events alike.
        descriptions: what each command, event or metric is, for the generated page.
        exception_messages: also send exception messages (scrubbed). Off by default: an
            exception is sent as its type and the product's own stack frames, because a
            message can hold what the user typed. The notice and the page say which.
    """

    def __init__(
        self,
        *,
        commands: Mapping[str, Mapping[str, Field]] | None = None,
        events: Mapping[str, Mapping[str, Field]] | None = None,
        attributes: Mapping[str, Field] | None = None,
        descriptions: Mapping[str, str] | None = None,
        exception_messages: bool = False,
    ) -> None:
        if not isinstance(exception_messages, bool):
            raise _invalid("exception_messages must be true or false")
        self.exception_messages = exception_messages
        self.commands = {str(c): dict(p) for c, p in (commands or {}).items()}
        self.events = {str(e): dict(a) for e, a in (events or {}).items()}
        self.attributes = dict(attributes or {})
        self.descriptions = dict(descriptions or {})
        for where, fields in [
            *((f"command {c}", p) for c, p in self.commands.items()),
            *((f"event {e}", a) for e, a in self.events.items()),
            ("attributes", self.attributes),
        ]:
            for name, value in fields.items():
                if not isinstance(value, Field):
                    raise _invalid(f"{where}: {name} is not declared with field(...)")
        for params in self.commands.values():
            for name, declared in params.items():
                if not declared.given:  # a parameter's value leaves only when asked for
                    params[name] = declared.with_policy("presence")

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> Schema:
        """A schema from a TOML file (or TOML text); see ``docs/privacy.md`` for the layout."""
        text = os.fspath(source)
        file = isinstance(source, os.PathLike) or ("\n" not in text and text.endswith(".toml"))
        return cls._parse(text, file)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Schema:
        """A schema from a TOML file, whatever its name."""
        return cls._parse(os.fspath(path), file=True)

    @classmethod
    def _parse(cls, text: str, file: bool) -> Schema:
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib
        try:
            if file:
                with open(text, encoding="utf-8") as opened:
                    text = opened.read()
            data = tomllib.loads(text)
        except UnicodeDecodeError as error:
            raise _invalid(f"not UTF-8: {error.reason} at byte {error.start}") from None
        except ValueError as error:
            raise _invalid(f"not valid TOML: {error}") from None
        except RecursionError:
            raise _invalid("not valid TOML: nested too deeply") from None

        return cls._from_data(data)

    @classmethod
    def _from_data(cls, data: dict[str, Any]) -> Schema:
        _known(data, "the schema", TOP_LEVEL)
        descriptions: dict[str, str] = {}
        commands = {}
        for name, raw in _table(data.get("commands", {}), "commands").items():
            spec = _known(_table(raw, f"commands.{name}"), f"commands.{name}", COMMAND_KEYS)
            descriptions[name] = _text(spec, "description", f"commands.{name}")
            commands[name] = _fields(spec.get("params", {}), f"commands.{name}.params")
        events = {}
        for name, raw in _table(data.get("events", {}), "events").items():
            spec = _known(_table(raw, f"events.{name}"), f"events.{name}", EVENT_KEYS)
            descriptions[name] = _text(spec, "description", f"events.{name}")
            events[name] = _fields(spec.get("attributes", {}), f"events.{name}.attributes")
        attributes = _fields(data.get("attributes", {}), "attributes")
        return cls(
            commands=commands,
            events=events,
            attributes=attributes,
            descriptions=descriptions,
            exception_messages=data.get("exception_messages", False),
        )

    # -- lookups --------------------------------------------------------------------------
    def param(self, command: str, name: str, collect: Iterable[str] = ()) -> Field:
        """How a command parameter's value may leave."""
        declared = self.commands.get(command, {}).get(name)
        if declared is not None:
            return declared
        return Field("string", "", policy="raw") if name in collect else _PRESENCE

    def collectable(self, command: str, collect: Iterable[str]) -> frozenset[str]:
        """The parameters whose values a command records (policies raw, enum, hash)."""
        declared = {
            n for n, f in self.commands.get(command, {}).items() if f.policy in VALUE_POLICIES
        }
        return frozenset(declared | set(collect))

    def dropped_params(self, command: str) -> frozenset[str]:
        return frozenset(n for n, f in self.commands.get(command, {}).items() if f.policy == "drop")

    def event_field(self, event: str, name: str) -> Field | None:
        declared = self.events.get(event, {}).get(name)
        return declared if declared is not None else self.attributes.get(name)

    def fingerprint(self) -> str:
        """Changes whenever what is collected changes: the notice's version."""
        import zlib

        parts = sorted(
            [f"c:{c}:{p}:{f.policy}" for c, ps in self.commands.items() for p, f in ps.items()]
            + [
                f"e:{e}:{a}:{f.policy}"
                for e, attrs in self.events.items()
                for a, f in attrs.items()
            ]
            + [f"a:{a}:{f.policy}" for a, f in self.attributes.items()]
            + [f"e:{e}" for e in self.events]
            + (["x:messages"] if self.exception_messages else [])
        )
        return f"{zlib.crc32(chr(10).join(parts).encode()):08x}"

    def summary(self, collected: Iterable[str] = ()) -> list[str]:
        """What the notice lists: the built-in fields, then each declared field's name, and
        the parameters whose values commands collect (``collect=``)."""
        parts = [
            "the commands you run, their result and duration, parameter names",
            "product, OS and Python versions",
            "a random install id",
            "on errors, their type and where in the product's code they happened"
            + (" and their message" if self.exception_messages else ", never their message"),
        ]
        values = sorted(self.value_names() | set(collected))
        if values:
            parts.append("the values of " + ", ".join(values))
        if self.events:
            parts.append("the events " + ", ".join(sorted(self.events)))
        return parts

    def value_names(self) -> set[str]:
        """The command parameters whose values (some form of them) are sent."""
        return {
            n for ps in self.commands.values() for n, f in ps.items() if f.policy in VALUE_POLICIES
        }

    # -- the end users' page -------------------------------------------------------------------
    def doc(self, product: str) -> str:
        """The "what we collect" page, as markdown."""
        rows = [
            "| where | field | type | sent as | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for command, params in sorted(self.commands.items()):
            if not params:
                rows.append(
                    f"| command `{command}` | - | - | - | {self.descriptions.get(command, '')} |"
                )
            for name, f in sorted(params.items()):
                rows.append(_row(f"command `{command}`", name, f))
        for event, attrs in sorted(self.events.items()):
            if not attrs:
                rows.append(f"| event `{event}` | - | - | - | {self.descriptions.get(event, '')} |")
            for name, f in sorted(attrs.items()):
                rows.append(_row(f"event `{event}`", name, f))
        for name, f in sorted(self.attributes.items()):
            rows.append(_row("spans, metrics, events", name, f))
        exemptions = [
            f"- `{n}`: {f.reason}"
            for fs in [*self.commands.values(), *self.events.values(), self.attributes]
            for n, f in fs.items()
            if not f.scrub
        ]
        text = [
            f"# What {product} collects",
            "",
            _PREAMBLE.format(product=product),
            "",
            *rows,
            "",
            _ALWAYS,
            "",
            _MESSAGES if self.exception_messages else _NO_MESSAGES,
        ]
        if exemptions:
            text += ["", "Fields sent without scrubbing, and why:", "", *exemptions]
        return "\n".join(text) + "\n"


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a table")
    return value


def _known(table: dict[str, Any], where: str, valid: tuple[str, ...]) -> dict[str, Any]:
    """``table``, if every key in it is one of ``valid``; else one line naming the first
    unknown key and listing the valid ones (a misspelt key must not drop a field silently)."""
    for key, value in table.items():
        if key in valid:
            continue
        if valid is TOP_LEVEL:
            raise _invalid(f"unknown top-level key {key!r} (valid: {', '.join(sorted(valid))})")
        container = _CONTAINERS.get(valid)
        hint = ""
        if container and isinstance(value, dict) and set(value) & set(FIELD_KEYS):
            hint = f"; a field goes in [{where}.{container}.{key}]"
        raise _invalid(f"{where}: unknown key {key!r} (valid: {', '.join(sorted(valid))}){hint}")
    return table


_CONTAINERS: dict[tuple[str, ...], str] = {COMMAND_KEYS: "params", EVENT_KEYS: "attributes"}


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise _invalid(f"{where}.{key} must be a string")
    return value


def _fields(table: Any, where: str) -> dict[str, Field]:
    found = {}
    for name, spec in _table(table, where).items():
        if not isinstance(spec, dict):
            raise _invalid(f"{where}.{name} must be a table")
        _known(spec, f"{where}.{name}", FIELD_KEYS)
        for key in ("description", "reason"):
            _text(spec, key, f"{where}.{name}")
        if not isinstance(spec.get("scrub", True), bool):
            raise _invalid(f"{where}.{name}.scrub must be true or false")
        try:
            found[name] = Field(**spec)
        except (TypeError, ValueError) as error:  # a SchemaError among them
            raise _invalid(f"{where}.{name}: {error}") from None
    return found


def _row(where: str, name: str, f: Field) -> str:
    return f"| {where} | `{name}` | {f.type} | {f.describe()} | {f.description} |"


_PREAMBLE = (
    "Generated from {product}'s telemetry schema: nothing else leaves your machine. Every "
    "text value is scrubbed of paths in your home directory, user names, e-mail and IP "
    "addresses, credentials and card-like numbers before it is sent."
)
_ALWAYS = (
    "Always sent: each command's name, its result (`success`, `usage_error`, `failure`, "
    "`cancelled`, `crash`), its exit code, its duration, the names (not the values) of the "
    "parameters given and, when it did not succeed, the error's type (the exit code, or the "
    "kind of error as the program's code names it, such as an exception's type); the "
    "product's name and version; the operating system's type and "
    "version, the processor architecture and the Python version; a random install id and "
    "a random session id."
)
_NO_MESSAGES = (
    "When something fails: the error's type and where it happened, as the file, line and "
    "function of each step through the program's code and the libraries it uses (not Python's "
    "own, never the source text). Never the error's message, which can hold what you typed; "
    "log records carry the text the program's author wrote, without the values filled into it."
)
_MESSAGES = (
    "When something fails: the error's type, its message (scrubbed) and where it happened, as "
    "the file, line and function of each step through the program's code and the libraries it "
    "uses (not Python's own, never the source text); log records carry their message, "
    "scrubbed."
)


def _invalid(message: str) -> SchemaError:
    """A ``SchemaError``: ``phonehome._core.errors`` loads only when a schema is wrong."""
    from phonehome._core.errors import SchemaError

    return SchemaError(message)
