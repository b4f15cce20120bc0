"""The first-run notice: shown before any byte is sent, again whenever the schema grows.

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
    from typing import Any

NOTICE_FILE = "notice.json"


def read(state_dir: str) -> dict[str, Any]:
    try:
        data = jsontext.loads(statefiles.read_text(os.path.join(state_dir, NOTICE_FILE)) or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def check(state_dir: str, nologo: bool, version: str, text: str, session: str) -> bool:
    """Show the notice if this version was never shown; ``True`` if this run must hold.

    ``nologo`` (``<PREFIX>_TELEMETRY_NOLOGO``): the notice counts as seen without being shown.
    """
    data = read(state_dir)
    if data.get("version") == version:
        if data.get("confirmed") is not True and data.get("session") != session:
            _write(state_dir, {**data, "confirmed": True})  # a later run: the user has seen it
        return data.get("session") == session and data.get("confirmed") is not True
    if nologo:
        _write(state_dir, {"version": version, "shown": None, "confirmed": True})
        return False
    try:
        print(text, file=sys.stderr)
    except Exception:  # no terminal to show it on: it was not shown, so nothing may go
        return True
    _write(
        state_dir,
        {"version": version, "shown": time.time(), "session": session, "confirmed": False},
    )
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
