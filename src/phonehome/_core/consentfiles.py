"""The files consent reads besides variables: the machine policy and the user-wide choice.

Both are TOML files (``phonehome._core.settings`` locates them). The consent resolver loads
this module only when one of them exists: an opted-out run without them pays one ``stat``
each and imports nothing.
"""

from __future__ import annotations

import os
import sys

from phonehome._core.diagnostics import warn

POLICY_KEYS = ("telemetry", "vendor", "endpoint")
"""What a machine policy may say: ``telemetry = "off"`` (every product off), ``vendor =
"off"`` (the vendors' copies off), ``endpoint = URL`` (every product also sends a copy to the
organisation's OTLP/HTTP endpoint)."""
USER_KEYS = ("telemetry",)
"""What the user-wide file says: ``telemetry = "off"`` or ``"on"`` for every product."""


class MachinePolicy:
    """What the administrator's policy file says (``NO_POLICY`` when there is none).

    ``off``: every product's telemetry is off. ``vendor_off``: the vendors' copies are off.
    ``endpoint``: every product also sends a copy to this OTLP/HTTP endpoint.
    """

    __slots__ = ("endpoint", "off", "path", "vendor_off")

    def __init__(
        self, path: str = "", off: bool = False, vendor_off: bool = False, endpoint: str = ""
    ) -> None:
        self.path = path
        self.off = off
        self.vendor_off = vendor_off
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return (
            f"MachinePolicy(path={self.path!r}, off={self.off}, vendor_off={self.vendor_off}, "
            f"endpoint={self.endpoint!r})"
        )


NO_POLICY = MachinePolicy()


def read_policy(path: str, found: os.stat_result | None = None) -> MachinePolicy:
    """The machine policy in ``path``; ``NO_POLICY`` when there is none (one ``stat``).

    A policy that cannot be used turns telemetry off, with one warning naming the file, the
    key and the valid ones: an administrator who wrote one meant to restrict.
    """
    data, problem = read_toml(path, POLICY_KEYS, found)
    if data is None and not problem:
        return NO_POLICY
    if not problem:
        problem = _check_policy(data or {})
    if problem:
        warn(f"{path}: {problem}; telemetry is off until it is fixed")
        return MachinePolicy(path, off=True)
    assert data is not None
    return MachinePolicy(
        path,
        off=data.get("telemetry") == "off",
        vendor_off=data.get("vendor") == "off",
        endpoint=str(data.get("endpoint", "")),
    )


def _check_policy(data: dict[str, object]) -> str:
    for key in ("telemetry", "vendor"):
        if key in data and data[key] != "off":
            return f'{key} = {_toml_value(data[key])} is not valid (use {key} = "off")'
    endpoint = data.get("endpoint")
    if endpoint is None:
        return ""
    if not isinstance(endpoint, str):
        return f"endpoint = {_toml_value(endpoint)} is not a URL"
    from phonehome._core.destinations import otlp
    from phonehome._core.errors import DestinationError

    try:
        otlp(endpoint, allow_insecure=True)
    except DestinationError as error:
        return f"endpoint = {endpoint!r}: {error}"
    return ""


def read_user_choice(path: str, found: os.stat_result | None = None) -> bool | None:
    """The user's choice for every product (``phonehome enable|disable --all``), or
    ``None`` when there is none (one ``stat``). A file that cannot be used counts as "no",
    with one warning."""
    data, problem = read_toml(path, USER_KEYS, found)
    if data is None and not problem:
        return None
    value = (data or {}).get("telemetry")
    if not problem and value not in ("on", "off"):
        problem = f'telemetry = {_toml_value(value)} is not valid (use "on" or "off")'
    if problem:
        warn(f"{path}: {problem}; telemetry is off until it is fixed")
        return False
    return value == "on"


def store_user_choice(path: str, enabled: bool) -> None:
    """Write the user's choice for every product (``phonehome enable|disable --all``)."""
    from phonehome._core import state as statefiles

    text = (
        "# Your choice for every product built on phonehome (phonehome enable|disable --all).\n"
        f'telemetry = "{"on" if enabled else "off"}"\n'
    )
    statefiles.write_text(path, text)
    _read.pop(path, None)


_read: dict[str, tuple[tuple[int, int, int], dict[str, object]]] = {}
"""Files already parsed, by path, with the (inode, size, mtime) they had: a service
re-resolves consent every second and must not parse the same file again."""


def read_toml(
    path: str, keys: tuple[str, ...], found: os.stat_result | None = None
) -> tuple[dict[str, object] | None, str]:
    """The file's table and ``""``; ``(None, "")`` when it does not exist; else a problem in
    one line (unreadable, not TOML, an unknown key with the valid ones listed). ``found``:
    the file's ``stat``, when the caller has just taken it."""
    if found is None:
        try:
            found = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None, ""
        except OSError as error:
            return None, f"cannot be read ({error.strerror or error})"
    stamp = (found.st_ino, found.st_size, found.st_mtime_ns)
    cached = _read.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1], ""
    try:
        with open(path, "rb") as file:
            raw = file.read(65536)
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        return None, f"not valid TOML ({' '.join(str(error).split())})"
    unknown = [key for key in data if key not in keys]
    if unknown:
        return None, f"unknown key {unknown[0]!r} (valid: {', '.join(keys)})"
    _read[path] = (stamp, data)
    return data, ""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if not isinstance(value, str) else f'"{value}"'
