"""The host's ``logging`` warnings and errors, recorded as log records in the current span.

It wraps the log record factory instead of adding a handler: a handler on the root logger
would turn the host's later ``logging.basicConfig()`` into a no-op and silence Python's
last-resort output of warnings to stderr. The host's logging behaves as without us.
"""

from __future__ import annotations

import logging

from phonehome._core.diagnostics import record_error
from phonehome._host.recorder import Recorder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_SEVERITY = (
    (logging.CRITICAL, 21),
    (logging.ERROR, 17),
    (logging.WARNING, 13),
    (logging.INFO, 9),
    (0, 5),
)
"""Python's levels as OpenTelemetry severity numbers."""

_OWN_LOGGERS = ("opentelemetry", "azure", "phonehome", "urllib3", "requests", "grpc")


class LogBridge:
    """The host's ``logging`` warnings and errors as log records in the current span.

    It wraps the log record factory instead of adding a handler: a handler on the root logger
    would turn the host's later ``logging.basicConfig()`` into a no-op and silence Python's
    last-resort output of warnings to stderr. The host's logging behaves as without us.
    The source file's path is not recorded: it names the user's directories. The body is the
    message's template unless the schema opts in to messages (``_template``).
    """

    def __init__(self, recorder: Recorder, level: int) -> None:
        self._recorder = recorder
        self._level = level
        self._previous = logging.getLogRecordFactory()
        self._factory = self._make
        self._active = True
        logging.setLogRecordFactory(self._factory)

    def close(self) -> None:
        """Stop recording; unwrap the factory unless someone wrapped it after us."""
        self._active = False
        if logging.getLogRecordFactory() is self._factory:
            logging.setLogRecordFactory(self._previous)

    def _make(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self._previous(*args, **kwargs)
        if self._active and record.levelno >= self._level:
            self.emit(record)
        return record

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(_OWN_LOGGERS):
            return
        try:
            severity = next(s for level, s in _SEVERITY if record.levelno >= level)
            exceptions = self._recorder.exceptions
            exception = None
            if record.exc_info and record.exc_info[1] is not None:
                exception = exceptions.describe(record.exc_info[1])[1]
            self._recorder.log(
                severity,
                record.levelname,
                record.getMessage() if exceptions.messages else _template(record),
                {
                    "logger.name": record.name,
                    "code.function.name": record.funcName or "",
                    "code.line.number": record.lineno,
                },
                exception=exception,
            )
        except Exception as error:
            record_error("logging bridge", error)


def _template(record: logging.LogRecord) -> str:
    """The message as the program's author wrote it, without the values filled into it
    (``"no such table: %s"``): they can hold what the user typed. Text that was formatted
    before it was logged (an f-string) is the author's choice, and is scrubbed like every
    text."""
    try:
        return str(record.msg)
    except Exception:
        return f"<unprintable {type(record.msg).__name__}>"
