"""``phonehome.instrument()``: settings, consent, and the wiring of host and sender.

The composition root of the pipeline. It checks the arguments and reads the variables once
(``phonehome._core.settings``), lets the consent resolver decide, and returns a no-op handle
right there when the answer is no: nothing below that line is imported. When it is yes, it
starts the host side (``phonehome._host.start``) and hands it a courier to the sender for
in-process delivery (CI runs, services, ``flush()``) and for the debug display: the host
never imports the sender itself.
"""

from __future__ import annotations

import os

from phonehome._core import settings as settings_
from phonehome._core.consent import Decision, Resolver
from phonehome._core.diagnostics import record_error, warn
from phonehome._host.telemetry import Telemetry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal

    from phonehome._core.destinations import Destination
    from phonehome._policy.schema import Schema
    from phonehome._spool.manifest import Manifest
    from phonehome._spool.records import Record

_D = settings_


def instrument(
    product: str,
    *,
    version: str = _D.DEFAULT_VERSION,
    vendor: str | Destination | None = None,
    consent: Literal["opt-in", "opt-out"] = _D.DEFAULT_CONSENT,
    enabled: bool | None = None,
    user: str | Destination | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    shutdown_timeout: float = _D.DEFAULT_SHUTDOWN_TIMEOUT,
    capture_logging: bool = True,
    mode: Literal["auto", "cli", "ci", "service"] = _D.DEFAULT_MODE,
    ci_budget: float = _D.DEFAULT_CI_BUDGET,
    spool_max_bytes: int = _D.DEFAULT_SPOOL_MAX_BYTES,
    spool_max_age: float = _D.DEFAULT_SPOOL_MAX_AGE,
    sender_lifetime: float = _D.DEFAULT_SENDER_LIFETIME,
    schema: Schema | str | os.PathLike[str] | None = None,
    automation: Literal["tag", "collapse", "drop"] = _D.DEFAULT_AUTOMATION,
    notice_url: str | None = None,
    heartbeat: str | float | None = None,
    system_metrics: bool = False,
) -> Telemetry:
    """Start telemetry for ``product``; use the result as a context manager.

    Args:
        product: the product's name (``service.name``; also the variable prefix).
        version: the product's version (``service.version``).
        vendor: the vendor's destination: an OTLP endpoint URL, an Azure Monitor connection
            string, or a :class:`Destination`.
        consent: ``"opt-out"`` (on unless refused) or ``"opt-in"`` (off until enabled).
        enabled: the product's own configuration flag; ``False`` turns everything off.
        user: the product's configuration value for the user's own destination.
        state_dir: where stored consent and the install id live (default: the platform's
            user state directory, or ``<PREFIX>_TELEMETRY_DIR``).
        shutdown_timeout: seconds a service's end may spend delivering what is left.
        capture_logging: send the host's ``logging`` records at WARNING and above.
        mode: ``"auto"``, ``"cli"``, ``"ci"`` or ``"service"`` (see ``docs/delivery.md``).
        ci_budget: seconds a CI run may spend delivering synchronously at the end.
        spool_max_bytes: the spool's size cap; the oldest records go first.
        spool_max_age: seconds a record may wait in the spool before it is dropped.
        sender_lifetime: the detached sender's hard lifetime cap, in seconds.
        schema: what may be sent: a :class:`Schema`, or the path of a TOML file. Without
            one, commands send their parameters' names and the values in ``collect``, and
            nothing else that is not built in.
        automation: runs under CI or an AI coding agent are ``"tag"``-ged (default: each
            run its own id, nothing kept), ``"collapse"``-d (one id per provider) or
            ``"drop"``-ped (telemetry off).
        notice_url: where the first-run notice sends people to read more.
        heartbeat: send a ``heartbeat`` event at most once per this interval (``"24h"``).
        system_metrics: in ``service`` mode, also send process and host CPU, memory, disk
            and network metrics (its own consent category; ``phonehome[system]``).

    Every setting, its variable and its precedence: ``docs/configuration.md``.
    """
    arguments = dict(locals())  # every argument by name: resolve() checks them all
    try:
        settings = settings_.resolve(**arguments)
    except ValueError as error:  # a SettingError: it names the argument and the fix
        warn(f"{error}; telemetry is off")
        return Telemetry(None, Decision(False, "invalid", str(error)))
    resolver = Resolver(
        settings.prefix,
        settings.consent,
        settings.enabled,
        _locate(settings.product, settings.state_dir),
        settings.automation,
    )
    try:
        decision = resolver.resolve()
    except Exception as error:
        record_error("consent", error)
        return Telemetry(resolver, Decision(False, "error", "consent could not be read"))
    if not decision.enabled:
        _purge_held(resolver)
        return Telemetry(resolver, decision)
    try:
        from phonehome._host.recording import start

        return start(settings, resolver, decision, _InProcess())
    except Exception as error:
        record_error("start", error)
        return Telemetry(resolver, Decision(False, "error", "telemetry failed to start"))


class _InProcess:
    """The courier the host is given: the sender and the debug display, in this process."""

    def deliver(self, state_dir: str, budget: float) -> bool:
        from pathlib import Path

        from phonehome._sender.deliver import deliver

        return deliver(Path(state_dir), budget) is not None

    def show(self, records: list[Record], header: dict[str, Any], manifest: Manifest) -> None:
        from phonehome._tools.debug import show

        show(records, header, manifest)


def _locate(product: str, override: str | None) -> str | Callable[[], str]:
    """The state directory, or a callable that locates the platform's on first use."""
    if override is not None:
        return override
    located: list[str] = []

    def locate() -> str:
        if not located:
            located.append(settings_.platform_state_dir(product))
        return located[0]

    return locate


def _purge_held(resolver: Resolver) -> None:
    """Consent is off: data held from earlier runs must never be sent. A ``stat`` (and a
    directory listing if a spool exists) when there is none, so an opted-out run still
    writes nothing and imports nothing more."""
    try:
        spool = os.path.join(resolver.state_path, "spool")
        if os.path.isdir(spool) and any(n.endswith(".seg") for n in os.listdir(spool)):
            from phonehome._spool.segments import Spool

            Spool(spool).purge()
    except Exception as error:
        record_error("purge", error)
