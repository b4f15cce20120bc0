"""``instrument()``: check the arguments once, decide consent, and start recording if on.

The one place the arguments' precedence and validation live. An opted-out run stops right
after the consent decision: nothing below it is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from phonehome import _environment as env
from phonehome._consent import ConsentDefault, Decision, LiveConsent, Resolver
from phonehome._diagnostics import record_error, warn
from phonehome._telemetry import Telemetry, _load_recording

if TYPE_CHECKING:
    from phonehome._delivery import Mode
    from phonehome._destinations import Destination
    from phonehome._schema import Schema


class _Settings:
    """``instrument()``'s arguments, checked once (``state_dir`` ``None``: the platform's)."""

    __slots__ = (
        "automation",
        "capture_logging",
        "ci_budget",
        "consent",
        "enabled",
        "ephemeral",
        "heartbeat",
        "mode",
        "notice_url",
        "prefix",
        "product",
        "schema",
        "sender_lifetime",
        "shutdown_timeout",
        "spool_max_age",
        "spool_max_bytes",
        "state_dir",
        "system_metrics",
        "user",
        "vendor",
        "version",
    )

    def __init__(
        self,
        product: str,
        version: str,
        prefix: str,
        consent: ConsentDefault,
        enabled: bool | None,
        vendor: str | Destination | None,
        user: str | Destination | None,
        state_dir: Path | None,
        shutdown_timeout: float,
        capture_logging: bool,
        mode: Mode,
        ci_budget: float,
        spool_max_bytes: int,
        spool_max_age: float,
        sender_lifetime: float,
        schema: Schema | str | os.PathLike[str] | None = None,
        automation: str = "tag",
        notice_url: str | None = None,
        heartbeat: float | None = None,
        system_metrics: bool = False,
    ) -> None:
        self.product = product
        self.version = version
        self.prefix = prefix
        self.consent = consent
        self.enabled = enabled
        self.vendor = vendor
        self.user = user
        self.state_dir = state_dir
        self.shutdown_timeout = shutdown_timeout
        self.capture_logging = capture_logging
        self.mode = mode
        self.ci_budget = ci_budget
        self.spool_max_bytes = spool_max_bytes
        self.spool_max_age = spool_max_age
        self.sender_lifetime = sender_lifetime
        self.schema = schema
        self.automation = automation
        self.notice_url = notice_url
        self.heartbeat = heartbeat
        self.system_metrics = system_metrics
        self.ephemeral = False
        """Running under CI or an agent: nothing about the install is kept."""


def instrument(
    product: str,
    *,
    version: str = "0.0.0",
    vendor: str | Destination | None = None,
    consent: ConsentDefault = "opt-out",
    enabled: bool | None = None,
    user: str | Destination | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    shutdown_timeout: float = 3.0,
    capture_logging: bool = True,
    mode: Mode = "auto",
    ci_budget: float = 2.0,
    spool_max_bytes: int = 10 * 1024 * 1024,
    spool_max_age: float = 7 * 24 * 3600.0,
    sender_lifetime: float = 30.0,
    schema: Schema | str | os.PathLike[str] | None = None,
    automation: Literal["tag", "collapse", "drop"] = "tag",
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
    """
    try:
        settings = _settings(
            product,
            version,
            vendor,
            consent,
            enabled,
            user,
            state_dir,
            shutdown_timeout,
            capture_logging,
            mode,
            ci_budget,
            spool_max_bytes,
            spool_max_age,
            sender_lifetime,
            schema,
            automation,
            notice_url,
            heartbeat,
            system_metrics,
        )
    except _SettingError as error:
        warn(f"{error}; telemetry is off")
        return Telemetry(_OFF_SETTINGS, None, Decision(False, "invalid", str(error)))
    resolver = Resolver(
        settings.prefix,
        settings.consent,
        settings.enabled,
        _state_dir(settings),
        settings.automation,
    )
    try:
        decision = resolver.resolve()
    except Exception as error:
        record_error("consent", error)
        return Telemetry(settings, resolver, Decision(False, "error", "consent could not be read"))
    if not decision.enabled:
        _purge_held(resolver)
        return Telemetry(settings, resolver, decision)
    try:
        return _start_pipeline(settings, resolver, decision)
    except Exception as error:
        record_error("start", error)
        return Telemetry(settings, resolver, Decision(False, "error", "telemetry failed to start"))


def _start_pipeline(settings: _Settings, resolver: Resolver, decision: Decision) -> Telemetry:
    from phonehome import _destinations, _identity, _notice, _resource
    from phonehome._consent import automation
    from phonehome._consent import level as consent_level
    from phonehome._delivery import Delivery
    from phonehome._diagnostics import strict_schema
    from phonehome._schema import Enforcer

    try:
        schema = _load_schema(settings.schema)
    except (OSError, ValueError) as error:
        warn(f"instrument(schema=...): {error}; telemetry is off")
        return Telemetry(settings, resolver, Decision(False, "invalid", f"bad schema: {error}"))

    _load_recording()
    state_dir = resolver.state_dir
    environ = os.environ
    prefix = settings.prefix
    live = LiveConsent(resolver, decision)
    destinations = _destinations.resolve(settings.vendor, settings.user)
    if env.flag(environ.get(env.TELEMETRY_VENDOR_OPTOUT.format(prefix=prefix), "")) is True:
        destinations = [(role, d) for role, d in destinations if role != "vendor"]
    who = automation(environ)
    session = _identity.session_id()
    attributes = _resource.attributes(
        settings.product,
        settings.version,
        _identity.install_id(state_dir, who, settings.automation),
        session,
    )
    if who is not None and settings.automation == "tag":
        attributes["phonehome.automation"] = who
    if who is None:
        salt = lambda: _identity.salt(state_dir)  # noqa: E731
    else:  # nothing kept in an ephemeral environment: hashes do not join across runs
        ephemeral = os.urandom(16)
        salt = lambda: ephemeral  # noqa: E731
    level = consent_level(environ, prefix)
    enforcer = Enforcer(schema, salt, strict_schema(), level)
    delivery = Delivery(
        state_dir=state_dir,
        product=settings.product,
        prefix=prefix,
        consent=settings.consent,
        enabled=settings.enabled,
        resource=_resource.with_environment(attributes, environ),
        destinations=destinations,
        mode=settings.mode,
        max_bytes=settings.spool_max_bytes,
        max_age=settings.spool_max_age,
        ci_budget=settings.ci_budget,
        lifetime=settings.sender_lifetime,
        shutdown_timeout=settings.shutdown_timeout,
        enforcer=enforcer,
        automation=settings.automation,
    )
    version = schema.fingerprint()
    if environ.get(env.SCHEMA_CHECK):
        delivery.mode = "check"
        enforcer.report_fields = True
    elif env.flag(environ.get(env.TELEMETRY_DEBUG.format(prefix=prefix), "")) is True:
        delivery.mode = "debug"
    elif delivery.has_destinations:
        text = _notice.text(settings.product, prefix, schema.summary(), settings.notice_url)
        delivery.hold = _notice.check(state_dir, prefix, version, text, session)
    settings.ephemeral = who is not None
    refused = env.flag(environ.get(env.TELEMETRY_SYSTEM_METRICS.format(prefix=prefix), ""))
    if refused is False:  # its own consent category: the user said no to this part only
        settings.system_metrics = False
    telemetry = Telemetry(settings, resolver, decision, live, delivery)
    if who is None and delivery.has_destinations:
        from phonehome._usage import lifecycle

        event = lifecycle(state_dir, settings.product, settings.version)
        if event is not None:
            telemetry._emit(*event)
    return telemetry


def _purge_held(resolver: Resolver) -> None:
    """Consent is off: data held from earlier runs must never be sent. A ``stat`` (and a
    directory listing if a spool exists) when there is none, so an opted-out run still
    writes nothing and imports nothing more."""
    try:
        spool = resolver.state_dir / "spool"
        if os.path.isdir(spool) and any(n.endswith(".seg") for n in os.listdir(spool)):
            from phonehome._spool import Spool

            Spool(spool).purge()
    except Exception as error:
        record_error("purge", error)


def _load_schema(value: object) -> Schema:
    from phonehome._schema import Schema, SchemaError

    if value is None:
        return Schema()
    if isinstance(value, Schema):
        return value
    if isinstance(value, str | os.PathLike):
        return Schema.from_toml(Path(value))
    raise SchemaError(f"expected a Schema or the path of a TOML file, got {type(value).__name__}")


class _SettingError(ValueError):
    pass


def _interval(name: str, value: object) -> float | None:
    if value is None:
        return None
    from phonehome._usage import interval

    try:
        return interval(value)  # type: ignore[arg-type]
    except ValueError as error:
        raise _SettingError(f"instrument({name}={value!r}): {error}") from None


def _is_destination(value: object) -> bool:
    from phonehome._destinations import Destination

    return isinstance(value, Destination)


def _state_dir(settings: _Settings) -> Callable[[], Path] | Path:
    """The state directory, or a callable that locates it on first use."""
    if settings.state_dir is not None:
        return settings.state_dir
    located: list[Path] = []

    def locate() -> Path:
        if not located:
            from phonehome._state import state_dir

            located.append(state_dir(settings.product))
        return located[0]

    return locate


def _settings(
    product: object,
    version: object,
    vendor: object,
    consent: object,
    enabled: object,
    user: object,
    state_dir: object,
    shutdown_timeout: object,
    capture_logging: object,
    mode: object,
    ci_budget: object,
    spool_max_bytes: object,
    spool_max_age: object,
    sender_lifetime: object,
    schema: object = None,
    automation: object = "tag",
    notice_url: object = None,
    heartbeat: object = None,
    system_metrics: object = False,
) -> _Settings:
    if not isinstance(product, str) or not product.strip():
        raise _SettingError(
            f"instrument(product={product!r}): the product name must be a non-empty string"
        )
    if consent not in ("opt-in", "opt-out"):
        raise _SettingError(f"instrument(consent={consent!r}): use 'opt-in' or 'opt-out'")
    if enabled is not None and not isinstance(enabled, bool):
        raise _SettingError(f"instrument(enabled={enabled!r}): use True, False or None")
    for name, value in (("vendor", vendor), ("user", user)):
        if value is not None and not isinstance(value, str) and not _is_destination(value):
            raise _SettingError(
                f"instrument({name}=...): expected a URL, a connection string "
                f"or a Destination, got {type(value).__name__}"
            )
    if not isinstance(shutdown_timeout, int | float) or not 0 <= shutdown_timeout < 3600:
        raise _SettingError(
            f"instrument(shutdown_timeout={shutdown_timeout!r}): "
            "use a number of seconds between 0 and 3600"
        )
    if automation not in ("tag", "collapse", "drop"):
        raise _SettingError(
            f"instrument(automation={automation!r}): use 'tag', 'collapse' or 'drop'"
        )
    if notice_url is not None and not isinstance(notice_url, str):
        raise _SettingError(f"instrument(notice_url={notice_url!r}): expected a URL")
    if mode not in ("auto", "cli", "ci", "service"):
        raise _SettingError(f"instrument(mode={mode!r}): use 'auto', 'cli', 'ci' or 'service'")
    for name, value, upper in (
        ("ci_budget", ci_budget, 600),
        ("spool_max_age", spool_max_age, 10 * 365 * 86400),
        ("spool_max_bytes", spool_max_bytes, 1 << 40),
        ("sender_lifetime", sender_lifetime, 3600),
    ):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= upper:
            raise _SettingError(
                f"instrument({name}={value!r}): use a positive number up to {upper}"
            )
    if state_dir is not None and not isinstance(state_dir, str | os.PathLike):
        raise _SettingError(f"instrument(state_dir={state_dir!r}): expected a path")
    return _Settings(
        product=product.strip(),
        version=str(version),
        prefix=env.prefix_for(product.strip()),
        consent=consent,
        enabled=enabled,
        vendor=vendor,  # type: ignore[arg-type]
        user=user,  # type: ignore[arg-type]
        state_dir=Path(state_dir) if state_dir is not None else None,
        shutdown_timeout=float(shutdown_timeout),
        capture_logging=bool(capture_logging),
        mode=mode,
        ci_budget=float(ci_budget),  # type: ignore[arg-type]
        spool_max_bytes=int(spool_max_bytes),  # type: ignore[call-overload]
        spool_max_age=float(spool_max_age),  # type: ignore[arg-type]
        sender_lifetime=float(sender_lifetime),  # type: ignore[arg-type]
        schema=schema,  # type: ignore[arg-type]
        automation=automation,
        notice_url=notice_url,
        heartbeat=_interval("heartbeat", heartbeat),
        system_metrics=system_metrics is True,
    )


_OFF_SETTINGS = _Settings(
    "phonehome",
    "0",
    "PHONEHOME",
    "opt-in",
    False,
    None,
    None,
    Path(),
    0.0,
    False,
    "cli",
    0.0,
    0,
    0.0,
    0.0,
)
