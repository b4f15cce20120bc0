"""What the handle returns: ``Span`` (a command or a span), ``Counter``, ``Histogram``, ``Gauge``.

These base classes record nothing: one shared instance of each is what a handle with consent
off returns. With consent on the recording's spans and instruments
(``phonehome._host.recorder``) subclass them. On the consent-off path of every CLI, so
without ``from __future__ import annotations``: names for type checking only are quoted.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType
    from typing import Any


class Span:
    """A command or a span: a context manager that makes it current for its body."""

    __slots__ = ()

    @property
    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` of this span (``None`` while telemetry is off)."""
        return None

    def set_attribute(self, key: str, value: "Any") -> None:
        """Add an attribute (sent only if the schema declares it)."""

    def add_event(self, name: str, attributes: "Mapping[str, Any] | None" = None) -> None:
        """A point-in-time event inside the span (an OpenTelemetry span event)."""

    def set_exit_code(
        self,
        code: int,
        *,
        usage_error: bool = False,
        cancelled: bool = False,
        error_type: "str | None" = None,
    ) -> None:
        """End the command with exit code ``code``, without raising: 0 is ``success``,
        another code ``failure`` (``usage_error`` with ``usage_error=True``: the arguments
        were wrong, the command did not run; ``cancelled`` with ``cancelled=True``: the
        user stopped it). ``error_type`` is what ended it, as ``error.type``: a class of
        error named as an exception's type is (dotted identifiers: it is always sent, so
        free text is refused), the code if not given. The code is kept as
        the process exits with it (``256`` is 0 on POSIX). An exception leaving the block
        decides instead."""

    def __enter__(self) -> "Span":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> bool | None:
        return None


NOOP_SPAN = Span()


class Counter:
    """A custom counter."""

    __slots__ = ()

    def add(self, amount: float, attributes: "Mapping[str, Any] | None" = None) -> None:
        """Add ``amount`` (attributes as the schema declares them)."""


class Histogram:
    """A custom histogram."""

    __slots__ = ()

    def record(self, amount: float, attributes: "Mapping[str, Any] | None" = None) -> None:
        """Record one value."""


class Gauge:
    """A custom gauge."""

    __slots__ = ()

    def set(self, amount: float, attributes: "Mapping[str, Any] | None" = None) -> None:
        """Set the current value."""


NOOP_COUNTER = Counter()
NOOP_HISTOGRAM = Histogram()
NOOP_GAUGE = Gauge()
