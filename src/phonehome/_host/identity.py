"""Anonymous identity: who (a random install id per product, a session id per run) and where
(the resource every signal carries: product, OS, architecture, Python).

Never derived from the machine (no host name, user name, IP address, MAC or hardware id):
the install id is random, minted only when consent is on, and kept in the state directory,
as is the salt for hashed fields (never sent), and the version the install last ran (its
``install`` and ``upgrade`` events).
"""

from __future__ import annotations

import os
import sys

from phonehome._core import jsontext
from phonehome._core import state as statefiles
from phonehome._core.settings import IDENTITY_FILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

INSTALL_ID_FILE, SALT_FILE = IDENTITY_FILES
LIFECYCLE_FILE = "lifecycle.json"
"""The version this install last ran (``install`` and ``upgrade`` events)."""


def install_id(state_dir: str, automation: str | None = None, policy: str = "tag") -> str:
    """The product's install id, minted on first use. Only call with consent on.

    Under a CI provider or an AI agent (``automation``) no id is kept: ``tag`` gives each run
    its own, ``collapse`` gives all runs of that provider one shared id.
    """
    if automation is not None:
        return f"automation-{automation}" if policy == "collapse" else os.urandom(16).hex()
    return _kept(os.path.join(state_dir, INSTALL_ID_FILE))


def salt(state_dir: str) -> bytes:
    """The install's salt for hashed fields: random, kept in the state directory, never sent."""
    return bytes.fromhex(_kept(os.path.join(state_dir, SALT_FILE)))


def session_id() -> str:
    return os.urandom(16).hex()


def forget(state_dir: statefiles.StrPath) -> None:
    """Delete the install id and the salt: the next run with consent is a new install."""
    for name in (INSTALL_ID_FILE, SALT_FILE):
        try:  # noqa: SIM105 - contextlib would cost every CLI an import
            os.unlink(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass


def _kept(path: str) -> str:
    """A random 128-bit hex value kept in ``path``: read it, or mint and store one."""
    try:
        existing = (statefiles.read_text(path) or "").strip()
    except OSError:
        existing = ""
    if len(existing) == 32 and all(c in "0123456789abcdef" for c in existing):
        return existing
    fresh = os.urandom(16).hex()
    try:
        statefiles.write_text(path, fresh + "\n")
    except OSError as error:
        statefiles.cannot_write(os.path.dirname(path), error)
    return fresh


def lifecycle(state_dir: str, product: str, version: str) -> tuple[str, dict[str, Any]] | None:
    """``install`` or ``upgrade`` when this install is new or its version changed (one small
    read on every run; the acquisition channel is looked up only for the event)."""
    path = os.path.join(state_dir, LIFECYCLE_FILE)
    try:
        seen = jsontext.loads(statefiles.read_text(path) or "{}")
    except (OSError, ValueError):
        seen = {}
    previous = seen.get("version") if isinstance(seen, dict) else None
    if previous == version:
        return None
    try:
        statefiles.write_text(path, jsontext.dumps({"version": version}) + "\n")
    except OSError:
        return None  # it could not be remembered: better no event than one every run
    if previous is None:
        return "install", {"version": version, "channel": _channel(product)}
    return "upgrade", {"from": str(previous), "to": version, "channel": _channel(product)}


def _channel(product: str) -> str:
    from phonehome._host.usage import channel

    return channel(product)


# -- the resource ---------------------------------------------------------------------------
_OS_TYPES = {"darwin": "darwin", "linux": "linux", "windows": "windows", "freebsd": "freebsd"}
_ARCHS = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "x86",
    "i686": "x86",
    "armv7l": "arm32",
    "ppc64le": "ppc64",
    "s390x": "s390x",
}


def resource(product: str, version: str, install_id: str, session_id: str) -> dict[str, str]:
    """Resource attributes, following the OpenTelemetry semantic conventions."""
    system, release, machine = _uname()
    from phonehome._core import VERSION

    return {
        "service.name": product,
        "service.version": version,
        "os.type": _OS_TYPES.get(system, system or "unknown"),
        "os.version": release,
        "host.arch": _ARCHS.get(machine, machine or "unknown"),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": "{}.{}.{}".format(*sys.version_info[:3]),
        # device.id is the random install id: it also keeps exporters (Azure's ai.device.id,
        # ai.cloud.roleInstance) from falling back to the host name.
        "device.id": install_id,
        "service.instance.id": session_id,
        "session.id": session_id,
        "telemetry.distro.name": "phonehome",
        "telemetry.distro.version": VERSION,
    }


def lasting(resource: dict[str, str]) -> dict[str, str]:
    """The resource without what changes every run: for the manifest, which the sender's own
    reports use (``phonehome.spool.dropped``), so that it is not rewritten, and synced to
    disk, by every run. The install id stands in for the session as the instance (an
    exporter without one would fall back to the host name)."""
    kept = {k: v for k, v in resource.items() if k != "session.id"}
    if "service.instance.id" in kept:
        kept["service.instance.id"] = kept.get("device.id", "")
    return kept


def _uname() -> tuple[str, str, str]:
    """System, release and machine (``platform`` would cost a CLI a few milliseconds)."""
    if hasattr(os, "uname"):
        uname = os.uname()
        return uname.sysname.lower(), uname.release, uname.machine.lower()
    import platform

    return platform.system().lower(), platform.release(), platform.machine().lower()


def user_resource(environ: Mapping[str, str]) -> dict[str, str]:
    """The user's ``OTEL_RESOURCE_ATTRIBUTES``, then ``OTEL_SERVICE_NAME``, read as the SDK
    reads them: for the user's own destinations only (the vendor gets phonehome's fixed list,
    and the sender keeps the identity attributes whatever these say)."""
    merged: dict[str, str] = {}
    raw = environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if raw:
        from urllib.parse import unquote

        for item in raw.split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                merged[unquote(key.strip())] = unquote(value.strip())
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        merged["service.name"] = service
    return merged
