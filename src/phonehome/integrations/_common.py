"""What the framework integrations share: the ``telemetry`` commands, and hiding their own
frames from the host's tracebacks.

Nothing is imported at import time: the admin functions load what they need when a
``telemetry`` command runs.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any


def state_dir(product: str, instrument_kwargs: dict[str, Any]) -> Path:
    from phonehome._tools import admin

    return admin.state_dir(product, instrument_kwargs.get("state_dir"))


def status_text(product: str, instrument_kwargs: dict[str, Any]) -> str:
    from phonehome._tools import admin

    rows = admin.status(product, state_dir(product, instrument_kwargs))
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows)


def set_consent(product: str, instrument_kwargs: dict[str, Any], enabled: bool) -> str:
    from phonehome._tools import admin

    admin.set_consent(product, state_dir(product, instrument_kwargs), enabled)
    if enabled:
        return f"telemetry for {product} is on (stored choice)"
    return f"telemetry for {product} is off (stored choice); nothing waiting will be sent"


def given(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The parameters the user gave: those not left at their default."""
    return {k: v for k, v in values.items() if k not in defaults or v != defaults[k]}


def _enable(product: str, instrument_kwargs: dict[str, Any]) -> str:
    return set_consent(product, instrument_kwargs, True)


def _disable(product: str, instrument_kwargs: dict[str, Any]) -> str:
    return set_consent(product, instrument_kwargs, False)


ACTIONS = (
    ("status", "Show whether telemetry is on, who decided, and where data goes.", status_text),
    ("enable", "Opt in to telemetry.", _enable),
    ("disable", "Opt out of telemetry (what is waiting is deleted).", _disable),
)
"""The ``telemetry`` subcommands every integration adds: (name, help, run(product, kwargs))."""


def hide_frames(exc: BaseException, filename: str) -> None:
    """Drop the frames of ``filename`` (an integration) from ``exc``'s traceback, so that
    the traceback the host prints, and the crash report, are the plain program's. A bare
    ``raise`` after this re-raises without the current frame."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == filename:
        tb = tb.tb_next
    head = tb
    while tb is not None:
        following = tb.tb_next
        while following is not None and following.tb_frame.f_code.co_filename == filename:
            following = following.tb_next
        tb.tb_next = following
        tb = following
    exc.__traceback__ = head
