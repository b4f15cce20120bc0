"""Destinations: where data goes, parsed and validated without importing OpenTelemetry.

A destination is an OTLP endpoint (http/protobuf or gRPC) or an Azure Monitor connection
string. The vendor's comes from ``vendor=``; the user's from ``user=``, the standard
``OTEL_EXPORTER_OTLP_*`` variables and ``APPLICATIONINSIGHTS_CONNECTION_STRING``. A bad one
is reported in one line naming where it came from, and skipped.
"""

from __future__ import annotations

import os
from operator import itemgetter

from phonehome._core import environment as env
from phonehome._core.diagnostics import warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, ClassVar, Literal

    from phonehome._core.errors import DestinationError

    Protocol = Literal["http/protobuf", "grpc"]
    Role = Literal["vendor", "user", "organisation"]
    """Whose copy a destination gets: the vendor's, the end user's own, or the organisation's
    (the machine policy's ``endpoint``)."""
    _Tuple = tuple[Any, ...]
else:
    _Tuple = tuple


def _is_guid(text: str) -> bool:
    digits = text.replace("-", "")
    return len(digits) == 32 and all(c in "0123456789abcdefABCDEF" for c in digits)


class Destination(_Tuple):
    """One place telemetry is delivered to (immutable; ``_replace`` makes a changed copy).

    Build one with :func:`otlp` or :func:`azure`, or pass a string (an OTLP endpoint URL or
    an Azure Monitor connection string) to ``vendor=`` / ``user=``. ``from_environment`` marks
    the user's destination configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables,
    which the OpenTelemetry exporters read themselves. ``environment`` holds, for
    ``from_environment``, the ``OTEL_EXPORTER_OTLP_*`` variables as they were when the data
    was recorded (a sender may run later, from another shell).

    A named tuple, with ``_fields``, ``_field_defaults``, ``_make``, ``_replace`` and
    ``_asdict`` as :func:`collections.namedtuple` has them. (Not ``typing.NamedTuple``:
    building that class cost every CLI with telemetry on more than any phonehome module.)
    """

    __slots__ = ()

    kind: Literal["otlp", "azure"]
    endpoint: str
    protocol: Protocol
    headers: tuple[tuple[str, str], ...]
    timeout: float
    compression: Literal["gzip", "none"] | None
    certificate_file: str | None
    connection_string: str
    from_environment: bool
    environment: tuple[tuple[str, str], ...]
    allow_insecure: bool

    __match_args__ = (
        "kind",
        "endpoint",
        "protocol",
        "headers",
        "timeout",
        "compression",
        "certificate_file",
        "connection_string",
        "from_environment",
        "environment",
        "allow_insecure",
    )
    _fields: ClassVar[tuple[str, ...]] = __match_args__
    _field_defaults: ClassVar[dict[str, Any]] = {}

    def __new__(
        cls,
        kind: Literal["otlp", "azure"],
        endpoint: str = "",
        protocol: Protocol = "http/protobuf",
        headers: tuple[tuple[str, str], ...] = (),
        timeout: float = 10.0,
        compression: Literal["gzip", "none"] | None = None,
        certificate_file: str | None = None,
        connection_string: str = "",
        from_environment: bool = False,
        environment: tuple[tuple[str, str], ...] = (),
        allow_insecure: bool = False,
    ) -> Destination:
        return tuple.__new__(
            cls,
            (
                kind,
                endpoint,
                protocol,
                headers,
                timeout,
                compression,
                certificate_file,
                connection_string,
                from_environment,
                environment,
                allow_insecure,
            ),
        )

    @classmethod
    def _make(cls, iterable: Iterable[Any]) -> Destination:
        """A destination from its fields in order."""
        result = tuple.__new__(cls, iterable)
        if len(result) != len(cls._fields):
            raise TypeError(f"Expected {len(cls._fields)} arguments, got {len(result)}")
        return result

    def _replace(self, /, **changes: Any) -> Destination:
        """A copy with the named fields changed."""
        result = self._make(map(changes.pop, self._fields, self))
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return result

    def _asdict(self) -> dict[str, Any]:
        """The fields by name, in order."""
        return dict(zip(self._fields, self, strict=True))

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"Destination({self.describe()})"

    def describe(self) -> str:
        """A one-line description with credentials masked."""
        text = self._describe()
        return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

    def _describe(self) -> str:
        if self.kind == "azure":
            return f"azure {self.endpoint} key={_mask(azure_key(self.connection_string))}"
        if self.from_environment:
            return "otlp from OTEL_EXPORTER_OTLP_* variables"
        masked = ", ".join(f"{k}={_mask(v)}" for k, v in self.headers)
        return f"otlp {self.protocol} {self.endpoint}" + (f" headers: {masked}" if masked else "")

    def signal_endpoint(self, signal: str) -> str:
        """The full URL for one signal (``traces``, ``metrics``, ``logs``)."""
        if self.protocol == "grpc":
            return self.endpoint
        return self.endpoint.rstrip("/") + "/v1/" + signal


for _index, _name in enumerate(Destination._fields):
    setattr(
        Destination, _name, property(itemgetter(_index), doc=f"Alias for field number {_index}")
    )
Destination._field_defaults.update(
    zip(Destination._fields[1:], Destination.__new__.__defaults__ or (), strict=True)
)
del _index, _name


def otlp(
    endpoint: str,
    *,
    protocol: Protocol = "http/protobuf",
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    compression: Literal["gzip", "none"] | None = None,
    certificate_file: str | None = None,
    allow_insecure: bool = False,
) -> Destination:
    """An OTLP destination. ``endpoint`` is the base URL (``https://host:4318``).

    ``allow_insecure=True`` lets a vendor destination use plain ``http://`` to a host that
    is not loopback (refused otherwise: the data would cross the network unencrypted).
    """
    check_url(endpoint)
    if protocol == "http/protobuf":
        check_base(endpoint)
    if protocol not in ("http/protobuf", "grpc"):
        raise _invalid(f"protocol {protocol!r} is not 'http/protobuf' or 'grpc'")
    if not timeout > 0:
        raise _invalid(f"timeout {timeout!r} must be a positive number of seconds")
    return Destination(
        "otlp",
        endpoint.rstrip("/"),
        protocol,
        tuple(sorted((headers or {}).items())),
        float(timeout),
        compression,
        certificate_file,
        allow_insecure=allow_insecure,
    )


def azure(connection_string: str, *, timeout: float = 10.0) -> Destination:
    """An Azure Monitor destination from its connection string."""
    parts = _parse_connection_string(connection_string)
    key = parts.get("instrumentationkey", "")
    if not _is_guid(key) or key != key.lower() or len(key) != 36:
        raise _invalid("the connection string has no valid InstrumentationKey")
    if any("=" in v for v in parts.values()):
        raise _invalid("a connection string value may not contain '='")
    if parts.get("authorization", "ikey").lower() != "ikey":
        raise _invalid("only Authorization=ikey is supported")
    suffix = parts.get("endpointsuffix")
    default = "https://dc.services.visualstudio.com"
    if suffix:
        location = parts.get("location")
        default = f"https://{location + '.' if location else ''}dc.{suffix}"
    endpoint = parts.get("ingestionendpoint") or default
    check_url(endpoint)
    normalized = ";".join(f"{k}={v}" for k, v in parts.items())
    return Destination(
        "azure",
        endpoint.rstrip("/"),
        timeout=float(timeout),
        connection_string=normalized,
    )


def parse(value: str | Destination) -> Destination:
    """A destination from a string: an Azure connection string or an OTLP/HTTP base URL."""
    if isinstance(value, Destination):
        return value
    if not isinstance(value, str):
        raise _invalid(f"expected a URL or a connection string, got {type(value).__name__}")
    text = value.strip()
    if "=" in text and "://" not in text.split("=", 1)[0]:
        return azure(text)
    return otlp(text)


def azure_key(connection_string: str) -> str:
    return _parse_connection_string(connection_string).get("instrumentationkey", "")


def resolve(
    vendor: str | Destination | None,
    user: str | Destination | None,
    environ: Mapping[str, str] = os.environ,
) -> list[tuple[Role, Destination]]:
    """Every usable destination with its role; bad ones are reported and skipped."""
    found: list[tuple[Role, Destination]] = []
    candidates: list[tuple[Role, str, str | Destination | None]] = [
        ("vendor", "vendor=", vendor),
        ("user", "user=", user),
        (
            "user",
            env.APPLICATIONINSIGHTS_CONNECTION_STRING,
            environ.get(env.APPLICATIONINSIGHTS_CONNECTION_STRING) or None,
        ),
    ]
    for role, origin, value in candidates:
        if value is None or value == "":
            continue
        try:
            destination = parse(value)
            if origin == env.APPLICATIONINSIGHTS_CONNECTION_STRING and destination.kind != "azure":
                raise _invalid("it is not an Azure Monitor connection string")
            if role == "vendor":
                _check_encrypted(destination)
            _check_extra(destination)
        except ValueError as error:  # a DestinationError
            warn(f"{origin} {_preview(value)}: {error}; that destination is skipped")
            continue
        found.append((role, destination))
    from_env = _otlp_from_environment(environ)
    if from_env is not None:
        try:
            _check_extra(from_env)
            found.append(("user", from_env))
        except ValueError as error:  # a DestinationError
            warn(f"{env.OTEL_EXPORTER_OTLP_PROTOCOL}=grpc: {error}; that destination is skipped")
    return found


def _check_encrypted(destination: Destination) -> None:
    """A vendor's plain-http endpoint is refused unless it is loopback or explicitly allowed:
    the end user's data would cross the network unencrypted."""
    scheme, _, rest = destination.endpoint.strip().partition("://")
    if scheme.lower() != "http" or destination.allow_insecure:
        return
    authority = rest
    for stop in "/?#\\":
        authority = authority.split(stop, 1)[0]
    host = authority.rpartition("@")[2]
    host = host[1:].split("]", 1)[0] if host.startswith("[") else host.split(":", 1)[0]
    if loopback(host) or host.lower() == "localhost":
        return
    raise _invalid(
        "plain http to a host that is not loopback would send telemetry unencrypted; use "
        "https://, or phonehome.otlp(url, allow_insecure=True) if that is really meant"
    )


_HEX = frozenset("0123456789abcdefABCDEF")


def loopback(address: str) -> bool:
    """Whether ``address`` is a loopback IP address (127.0.0.0/8 or ``::1``), as
    ``ipaddress.ip_address(address).is_loopback`` says for the addresses it accepts, without
    importing it (a few milliseconds of every run that sends to a local collector).
    Anything it would refuse is not loopback here either."""
    if ":" not in address:
        parts = address.split(".")
        return (
            len(parts) == 4
            and all(
                p.isascii() and p.isdigit() and len(p) <= 3 and (p == "0" or p[0] != "0")
                for p in parts
            )
            and all(int(p) <= 255 for p in parts)
            and parts[0] == "127"
        )
    head, double, tail = address.partition("::")
    groups = head.split(":") if head else []
    after = tail.split(":") if tail else []
    if "::" in tail or not all(0 < len(g) <= 4 and _HEX.issuperset(g) for g in groups + after):
        return False
    missing = 8 - len(groups) - len(after)
    if (missing < 1) if double else (missing != 0):
        return False
    return [int(g, 16) for g in groups + ["0"] * missing + after] == [0] * 7 + [1]


_EXTRAS = {
    "azure": ("azure.monitor.opentelemetry.exporter", "azure"),
    "grpc": ("opentelemetry.exporter.otlp.proto.grpc", "grpc"),
}


def _check_extra(destination: Destination) -> None:
    """Refuse a destination whose exporter is not installed, naming the extra to install."""
    needs = (
        "azure"
        if destination.kind == "azure"
        else ("grpc" if destination.protocol == "grpc" else None)
    )
    if needs is None:
        return
    module, extra = _EXTRAS[needs]
    from importlib.util import find_spec

    try:
        found = find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise _invalid(f"its exporter is not installed: pip install 'phonehome[{extra}]'")


def _otlp_from_environment(environ: Mapping[str, str]) -> Destination | None:
    names = [env.OTEL_EXPORTER_OTLP_ENDPOINT] + [
        f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT" for signal in env.SIGNALS
    ]
    usable = False
    for name in names:
        value = environ.get(name, "").strip()
        if not value:
            continue
        try:
            check_url(value)
        except ValueError as error:  # a DestinationError
            warn(f"{name}={value!r}: {error}; the OTLP destination from the environment is skipped")
            return None
        usable = True
    protocol = environ.get(env.OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf").strip()
    if usable and protocol not in ("http/protobuf", "grpc"):
        warn(
            f"{env.OTEL_EXPORTER_OTLP_PROTOCOL}={protocol!r} is not 'http/protobuf' or 'grpc'; "
            "the OTLP destination from the environment is skipped"
        )
        return None
    if not usable:
        return None
    snapshot = tuple(
        sorted(
            (k, v) for k, v in environ.items() if k.startswith(env.USER_DESTINATION_PREFIXES[:2])
        )
    )
    return Destination(
        "otlp",
        protocol="grpc" if protocol == "grpc" else "http/protobuf",
        from_environment=True,
        environment=snapshot,
    )


def signal_settings(environ: Mapping[str, str], signal: str) -> tuple[bool, Protocol]:
    """For the environment-configured destination: is ``signal`` configured, and how?"""
    upper = signal.upper()
    configured = bool(
        environ.get(env.OTEL_EXPORTER_OTLP_ENDPOINT, "").strip()
        or environ.get(f"OTEL_EXPORTER_OTLP_{upper}_ENDPOINT", "").strip()
    )
    protocol = (
        environ.get(f"OTEL_EXPORTER_OTLP_{upper}_PROTOCOL", "").strip()
        or environ.get(env.OTEL_EXPORTER_OTLP_PROTOCOL, "").strip()
        or "http/protobuf"
    )
    return configured, ("grpc" if protocol == "grpc" else "http/protobuf")


def check_url(url: str) -> None:
    """An absolute http(s) URL with a host and a valid port, if any.

    (Checked by hand: ``urllib.parse`` or a compiled pattern would cost a CLI more than
    this whole path.)
    """
    scheme, sep, rest = url.strip().partition("://")
    authority = rest
    for stop in "/?#":
        authority = authority.split(stop, 1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):  # [IPv6]:port
        literal, bracket, port = host[1:].partition("]")
        host, port = (literal if bracket else ""), port.removeprefix(":")
    else:
        host, _, port = host.partition(":")
    if (
        not sep
        or scheme.lower() not in ("http", "https")
        or not host
        or any(c.isspace() for c in url.strip())
    ):
        raise _invalid("not an http:// or https:// URL with a host")
    if port and (not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536):
        raise _invalid(f"not a valid URL (port {port!r} is not 1-65535)")


SIGNAL_PATHS = tuple(f"/v1/{signal}" for signal in env.SIGNALS)


def check_base(url: str) -> None:
    """An OTLP/HTTP base URL, not a signal's own: phonehome adds ``/v1/traces``,
    ``/v1/metrics`` and ``/v1/logs`` to it, as the OpenTelemetry specification does with
    ``OTEL_EXPORTER_OTLP_ENDPOINT``. (Only the per-signal variables take a full URL.)"""
    path = url.strip().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    for signal_path in SIGNAL_PATHS:
        if path.endswith(signal_path):
            base = path[: -len(signal_path)]
            raise _invalid(
                f"the URL ends in the signal path {signal_path}: give the base URL "
                f"{base!r} (phonehome adds /v1/traces, /v1/metrics and /v1/logs to it)"
            )


def _parse_connection_string(text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.strip().split(";"):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise _invalid(f"connection string part {_preview(key)} is not Key=Value")
        parts[key.strip().lower()] = value.strip()
    return parts


def _mask(secret: str) -> str:
    return secret[:4] + "…" if len(secret) > 8 else "…"


def _preview(value: object) -> str:
    text = str(value)
    if "=" in text or "@" in text:  # may hold a key: show its shape, not its content
        return repr(text[:12] + "…") if len(text) > 12 else repr(text)
    return repr(text[:80])


def _invalid(message: str) -> DestinationError:
    """A ``DestinationError``: ``phonehome._core.errors`` loads only when a destination is wrong."""
    from phonehome._core.errors import DestinationError

    return DestinationError(message)
