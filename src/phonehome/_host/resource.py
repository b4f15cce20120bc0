"""The resource every signal carries: what the product is and where it runs, anonymously.

Service name and version, OS type and version, architecture, Python version, the install
and session ids. Never a host name, user name, IP address or hardware id.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

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


def attributes(product: str, version: str, install_id: str, session_id: str) -> dict[str, str]:
    """Resource attributes, following the OpenTelemetry semantic conventions."""
    system, release, machine = _uname()
    from phonehome._core.version import VERSION

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


def _uname() -> tuple[str, str, str]:
    """System, release and machine (``platform`` would cost a CLI a few milliseconds)."""
    if hasattr(os, "uname"):
        uname = os.uname()
        return uname.sysname.lower(), uname.release, uname.machine.lower()
    import platform

    return platform.system().lower(), platform.release(), platform.machine().lower()


def with_environment(attributes: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Apply ``OTEL_RESOURCE_ATTRIBUTES`` and then ``OTEL_SERVICE_NAME``, as the SDK does."""
    merged = dict(attributes)
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
