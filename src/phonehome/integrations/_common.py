"""What the framework integrations share: the ``telemetry`` commands, hiding their own
frames from the host's tracebacks, and the end of a run an exception left.

Nothing is imported at import time: the admin functions load what they need when a
``telemetry`` command runs.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from phonehome._instrument import Telemetry


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


# -- a run an exception left ----------------------------------------------------------------
_held: list[tuple[Telemetry, BaseException, list[tuple[Any, Any, Any]]]] = []
"""The run an exception ended, until it is known whether the program catches it: its
telemetry, the exception, and our hooks (``sys.excepthook``, ``threading.excepthook``),
each with the one it wraps (one run at most)."""

_at_exit = False
"""Whether ``settle`` is registered to run as the interpreter begins to exit."""


def end(telemetry: Telemetry, exc: BaseException) -> None:
    """End a run that ``exc`` left (the framework's ``main``, argparse's block).

    An exception that would be a crash leaves ``main`` before anything knows whether the
    program catches it (``try: cli() except Exception: ...`` around it, as hf's does). The
    run is held until that is known: the interpreter reports it unhandled (a crash, recorded
    once, after the host's own report of it), or the next run starts, or the interpreter
    begins to exit without reporting it (the program handled it: the command stays a
    ``failure``). Other exceptions (interrupts, click's) end it at once."""
    settle(None)
    from phonehome._host.outcome import of_exception

    if not telemetry.enabled or not of_exception(exc).crash:
        telemetry.__exit__(type(exc), exc, exc.__traceback__)
        return
    try:
        _hold(telemetry, exc)
    except Exception as error:  # no way to wait for the program: a crash now, as it looks
        from phonehome._core.diagnostics import record_error

        record_error("hold run", error)
        telemetry.__exit__(type(exc), exc, exc.__traceback__)


def _hold(telemetry: Telemetry, exc: BaseException) -> None:
    """Hold the run: our ``sys.excepthook`` around the host's (the main thread's report),
    our ``threading.excepthook`` around the host's (another thread's, when it is this
    exception), and ``settle`` as the interpreter begins to exit (once per process)."""
    # in-process delivery may need it at the end, and it cannot load once the exit began
    import concurrent.futures.thread  # noqa: F401
    import sys
    import threading

    global _at_exit
    if not _at_exit:  # before threads are joined and atexit runs: delivery can start threads
        threading._register_atexit(settle, None)  # type: ignore[attr-defined]
        _at_exit = True
    from phonehome._host.outcome import raised_from

    previous, previous_thread = sys.excepthook, threading.excepthook

    def excepthook(kind: Any, value: Any, tb: Any) -> None:
        try:
            previous(kind, value, tb)  # the host's report first, as it would be without us
        except SystemExit as exit:  # the host's hook reports its error and exits: handled
            settle(value, exited=exit)
            raise
        finally:
            settle(value)

    def thread_excepthook(args: Any) -> None:
        try:
            previous_thread(args)
        finally:  # another thread's exception is this run's end only if it is this one
            if args.exc_value is not None and raised_from(args.exc_value, exc):
                settle(args.exc_value)

    hooks = [(sys, excepthook, previous), (threading, thread_excepthook, previous_thread)]
    _held.append((telemetry, exc, hooks))
    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def settle(reported: BaseException | None, exited: SystemExit | None = None) -> None:
    """End the held run, if one is: a crash if the interpreter reported it unhandled
    (``reported``, or, should another hook have taken ours' place, the last it reported:
    the exception, or one the program raised from it), else handled. ``exited``: the
    host's ``sys.excepthook`` reported it and exits (commitizen's): the command ends with
    that exit's code."""
    import sys

    from phonehome._host.outcome import exit_code, raised_from

    while _held:
        telemetry, exc, hooks = _held.pop()
        for module, ours, wrapped in hooks:
            if module.excepthook is ours:
                module.excepthook = wrapped
        if reported is None:
            reported = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
        crashed = reported if reported is not None and raised_from(reported, exc) else None
        if exited is not None and crashed is not None:
            telemetry._end(crashed, detached=False, exited=exit_code(exited.code))
        elif isinstance(reported, KeyboardInterrupt):
            # the interpreter is to die of Ctrl-C: code loaded now would cost it that exit
            from phonehome._instrument import hand_over

            hand_over(telemetry, crashed)
        elif crashed is not None:
            telemetry.__exit__(type(crashed), crashed, crashed.__traceback__)
        else:
            telemetry.__exit__(None, None, None)
