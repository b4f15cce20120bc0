"""The resource every signal carries: what the product is and where it runs, anonymously.

Service name and version, OS type and version, architecture, Python version, the install
and session ids. Never a host name, user name, IP address or hardware id.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from urllib.parse import unquote

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
    system = platform.system().lower()
    machine = platform.machine().lower()
    from phonehome import __version__

    return {
        "service.name": product,
        "service.version": version,
        "os.type": _OS_TYPES.get(system, system or "unknown"),
        "os.version": platform.release(),
        "host.arch": _ARCHS.get(machine, machine or "unknown"),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        # device.id is the random install id: it also keeps exporters (Azure's ai.device.id,
        # ai.cloud.roleInstance) from falling back to the host name.
        "device.id": install_id,
        "service.instance.id": session_id,
        "session.id": session_id,
        "telemetry.distro.name": "phonehome",
        "telemetry.distro.version": __version__,
    }


def with_environment(attributes: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """Apply ``OTEL_RESOURCE_ATTRIBUTES`` and then ``OTEL_SERVICE_NAME``, as the SDK does."""
    merged = dict(attributes)
    for item in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            merged[unquote(key.strip())] = unquote(value.strip())
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        merged["service.name"] = service
    return merged
