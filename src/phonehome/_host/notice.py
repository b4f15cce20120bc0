"""The first-run notice: shown before any byte is sent, again whenever the schema grows,
and whenever a command collects the value of a parameter (``collect=``) that no notice named.

The run that shows it holds what it recorded (spooled, not sent); the next run with consent
still on confirms it and delivery starts. Opting out in between purges the held data. Never
shown while consent is off; ``<PREFIX>_TELEMETRY_NOLOGO`` hides it without changing consent.
"""

from __future__ import annotations

import os
import sys
import time

from phonehome._core import environment as env
from phonehome._core import jsontext
from phonehome._core import state as statefiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from typing import Any

NOTICE_FILE = "notice.json"


def read(state_dir: str) -> dict[str, Any]:
    try:
        data = jsontext.loads(statefiles.read_text(os.path.join(state_dir, NOTICE_FILE)) or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def collected(data: dict[str, Any]) -> list[str]:
    """The parameters whose values a notice named because a command collected them."""
    names = data.get("collected")
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def check(
    state_dir: str, nologo: bool, version: str, text: str, session: str, data: dict[str, Any]
) -> bool:
    """Show the notice if this version was never shown; ``True`` if this run must hold.

    ``nologo`` (``<PREFIX>_TELEMETRY_NOLOGO``): the notice counts as seen without being shown.
    ``data``: the notice file as ``read`` gave it.
    """
    if data.get("version") == version:
        if data.get("confirmed") is not True and data.get("session") != session:
            _write(state_dir, {**data, "confirmed": True})  # a later run: the user has seen it
        return data.get("session") == session and data.get("confirmed") is not True
    kept = {"collected": collected(data)}
    if nologo:
        _write(state_dir, {"version": version, "shown": None, "confirmed": True, **kept})
        return False
    return _show(state_dir, text, {"version": version, "session": session, **kept})


def announce(
    state_dir: str, names: list[str], text: str | None, session: str, product: str
) -> bool:
    """A command collects the values of ``names``, which no notice named: show the notice
    again (``text``; ``None`` when it is hidden) and remember them. ``True`` if this run
    must hold what it recorded, as a run that shows the notice does."""
    data = read(state_dir)
    data["collected"] = sorted({*collected(data), *names})
    if text is None:
        _write(state_dir, data)
        return False
    if data.get("session") == session and data.get("confirmed") is not True:
        # this run showed the notice already, before the command: one more line, not two
        text = f"{product} also records the values of {', '.join(names)}."
    return _show(state_dir, text, {**data, "session": session})


def _show(state_dir: str, text: str, data: dict[str, Any]) -> bool:
    try:
        print(text, file=sys.stderr)
    except Exception:  # no terminal to show it on: it was not shown, so nothing may go
        return True
    _write(state_dir, {**data, "shown": time.time(), "confirmed": False})
    return True


def _write(state_dir: str, data: dict[str, Any]) -> None:
    # not kept (an unwritable directory): the notice shows again, and this run holds its data
    try:  # noqa: SIM105 - contextlib would cost every CLI an import
        statefiles.write_text(os.path.join(state_dir, NOTICE_FILE), jsontext.dumps(data) + "\n")
    except OSError:
        pass


def text(product: str, prefix: str, summary: list[str], url: str | None) -> str:
    """The notice: what is collected, how to opt out (the exact variable), where to read more."""
    lines = [
        f"{product} collects anonymous usage data to improve the product, with your consent.",
        "It records: " + "; ".join(summary) + ".",
        "Nothing is sent from this run. To opt out, set "
        f"{env.TELEMETRY_OPTOUT.format(prefix=prefix)}=1 (or DO_NOT_TRACK=1); "
        f"to hide this notice, {env.TELEMETRY_NOLOGO.format(prefix=prefix)}=1.",
    ]
    if url:
        lines.append(f"Read more: {url}")
    return "\n".join(lines)


class Collected:
    """What the notices named of the values commands collect (``collect=``); a command that
    collects another one shows the notice again, and its run holds what it recorded."""

    __slots__ = ("_nologo", "_session", "_state_dir", "_text", "named")

    def __init__(
        self,
        state_dir: str,
        session: str,
        named: set[str],
        nologo: bool,
        text: Callable[[list[str]], str],
    ) -> None:
        self._state_dir = state_dir
        self._session = session
        self.named = named
        """The parameters whose values a notice named (the schema's, and collected ones)."""
        self._nologo = nologo
        self._text = text
        """The notice, listing the collected values given."""

    def new(self, collect: Collection[str], params: Mapping[str, Any]) -> list[str]:
        """The parameters of ``collect`` given a value here that no notice named."""
        named = self.named
        return sorted({k for k in collect if k not in named and k in params})

    def announce(self, names: list[str], product: str) -> bool:
        """Name ``names`` (shown, unless hidden); ``True`` if this run must hold."""
        self.named.update(names)
        text = None if self._nologo else self._text(sorted(self.named))
        return announce(self._state_dir, names, text, self._session, product)
