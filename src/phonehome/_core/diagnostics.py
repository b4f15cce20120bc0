"""How phonehome talks about its own problems without hurting the host.

Two policies (chosen once, here): configuration problems become one warning line on stderr
naming the setting and the fix; failures on the hot path are contained and counted, and
re-raised only in strict mode (phonehome's own test suite turns it on).

Nothing here imports more than ``sys``: it runs on the consent-off path of every CLI.
"""

import sys


class Counts(dict[str, int]):
    """Counts by name, starting at zero (``collections.Counter``'s use here, without the
    import)."""

    def __missing__(self, key: str) -> int:
        return 0


errors = Counts()
"""Contained internal failures, by the operation that failed."""

_strict = False
_strict_schema = False
_notice_seen = False
_warned: set[str] = set()


def reset() -> None:
    """Forget the warnings already shown and the errors counted (for tests)."""
    _warned.clear()
    errors.clear()


def set_strict(strict: bool) -> None:
    """Re-raise contained errors instead of counting them (for tests)."""
    global _strict
    _strict = strict


def set_strict_schema(strict: bool) -> None:
    """Make recording an undeclared field an error (the pytest plugin does, for every test)."""
    global _strict_schema
    _strict_schema = strict


def strict_schema() -> bool:
    return _strict_schema or _strict


def set_notice_seen(seen: bool) -> None:
    """Count the first-run notice as seen, for every product (the ``phonehome_env`` fixture
    does, so that a test's first run sends what it records)."""
    global _notice_seen
    _notice_seen = seen


def notice_seen() -> bool:
    return _notice_seen


def warn(message: str) -> None:
    """Print one line to stderr, once per process per message. Never raises."""
    if message in _warned:
        return
    _warned.add(message)
    line = "phonehome: " + " ".join(message.split())
    try:  # noqa: SIM105 - contextlib would cost every opted-out CLI an import
        print(line, file=sys.stderr)
    except Exception:  # a closed stderr is not the host's problem
        pass


def record_error(operation: str, error: BaseException) -> None:
    """Count a contained failure; re-raise it in strict mode, and an undeclared field in
    strict schema mode (the pytest plugin's: the test fails where the field is recorded)."""
    errors[operation] += 1
    if _strict:
        raise error
    if _strict_schema:
        from phonehome._core.errors import UndeclaredError  # not on the consent-off path

        if isinstance(error, UndeclaredError):
            raise error
