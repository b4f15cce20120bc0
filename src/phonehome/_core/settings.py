"""The settings of one ``instrument()`` call: every default, defined once, and one object.

A setting comes from the integrator's code (an ``instrument()`` argument), from the end
user's environment (a variable), or from both; ``phonehome._core.table`` lists every one
with its variables and which source wins (``docs/configuration.md`` is generated from it).
:func:`resolve` checks the arguments and reads the variables once into a frozen
:class:`Settings`; nothing changes it afterwards. Consent has its own precedence (any "off"
wins), decided by ``phonehome._core.consent`` between :func:`check`, which looks at the
arguments alone, and :func:`resolve`: a run with consent off reads no other variable.

Nothing here imports more than ``os``: this runs on the consent-off path of every CLI (and
without ``from __future__ import annotations``: type-checking-only names are quoted).
"""

import os
import sys

from phonehome._core import environment as env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Literal, NoReturn

    from phonehome._core.destinations import Destination

    ConsentDefault = Literal["opt-in", "opt-out"]
    Mode = Literal["auto", "cli", "ci", "service"]
    DeliveryMode = Literal["cli", "ci", "service"]
    Automation = Literal["tag", "collapse", "drop"]
    Level = Literal["off", "crash", "error", "all"]
    SchemaSource = object
    """A ``Schema`` or the path of a TOML file (``None``: none); loaded by the host."""
    DestinationSource = str | Destination | None

# -- defaults, each defined once -----------------------------------------------------------------
DEFAULT_VERSION = "0.0.0"
DEFAULT_CONSENT: "ConsentDefault" = "opt-out"
DEFAULT_SHUTDOWN_TIMEOUT = 3.0
DEFAULT_MODE: "Mode" = "auto"
DEFAULT_CI_BUDGET = 2.0
DEFAULT_SPOOL_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_SPOOL_MAX_AGE = 7 * 24 * 3600.0
DEFAULT_SENDER_LIFETIME = 30.0
DEFAULT_AUTOMATION: "Automation" = "tag"
DEFAULT_SERVICE_INTERVAL = 5.0
"""Seconds between a service's deliveries, unless ``OTEL_BSP_SCHEDULE_DELAY`` says otherwise."""
PROMOTE_AFTER = 30.0
"""Seconds after which an ``auto`` block that is still running becomes a service."""

USER_FILE_NAME = "config.toml"
"""The user-wide file's name, in the platform's user configuration directory."""
POLICY_FILE_NAME = "policy.toml"
"""The machine policy file's name, in the platform's system configuration directory."""
IDENTITY_FILES = ("install-id", "salt")
"""In the state directory: the install id and the hashing salt (``phonehome._host.identity``),
which an opt-out forgets."""

MODES = ("auto", "cli", "ci", "service")
AUTOMATIONS = ("tag", "collapse", "drop")
CONSENTS = ("opt-in", "opt-out")


class Settings:
    """What one ``instrument()`` call runs with, arguments checked and variables read.

    Frozen: assigning to a field raises ``AttributeError``. (A plain class: a frozen
    dataclass would cost every opted-out CLI the import of ``dataclasses``.)
    """

    __slots__ = (
        "automation",
        "capture_logging",
        "ci_budget",
        "consent",
        "debug",
        "delivery_mode",
        "detected",
        "enabled",
        "heartbeat",
        "mode",
        "nologo",
        "notice_url",
        "prefix",
        "problems",
        "product",
        "schema",
        "schema_check",
        "sender_lifetime",
        "service_interval",
        "shutdown_timeout",
        "spool_max_age",
        "spool_max_bytes",
        "state_dir",
        "system_metrics",
        "user",
        "vendor",
        "vendor_optout",
        "version",
    )

    product: str
    version: str
    prefix: str
    """The variable prefix: the product name upper-cased, non-alphanumerics as ``_``."""
    vendor: "DestinationSource"
    vendor_optout: bool
    user: "DestinationSource"
    consent: "ConsentDefault"
    enabled: bool | None
    state_dir: str | None
    """``state_dir=`` or ``<PREFIX>_TELEMETRY_DIR``; ``None``: the platform's, located lazily."""
    shutdown_timeout: float
    capture_logging: bool
    mode: "Mode"
    """The ``mode=`` argument."""
    delivery_mode: "DeliveryMode"
    """The mode a run starts in: ``mode=``, else ``<PREFIX>_TELEMETRY_MODE``, else ``ci``
    where a CI provider is detected, else ``cli``."""
    ci_budget: float
    spool_max_bytes: int
    spool_max_age: float
    sender_lifetime: float
    service_interval: float
    schema: "SchemaSource"
    schema_check: str
    """The report file of ``phonehome schema check``; empty when not checking."""
    automation: "Automation"
    detected: str | None
    """The CI provider or AI coding agent running the program, if any."""
    notice_url: str | None
    nologo: bool
    heartbeat: float | None
    system_metrics: bool
    debug: bool
    problems: tuple[str, ...]
    """Variables that could not be used, one line each; shown only if telemetry is on."""

    def __init__(self, **values: object) -> None:
        missing = set(self.__slots__) - set(values)
        if missing:
            raise TypeError(f"Settings without {', '.join(sorted(missing))}")
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are frozen: {name} cannot be changed")

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Settings({fields})"

    @property
    def ephemeral(self) -> bool:
        """Running under CI or an agent, or checked by ``phonehome schema check``: nothing
        about the install is kept (no install id, salt, usage or lifecycle file)."""
        return self.detected is not None or bool(self.schema_check)


def resolve(
    product: object,
    *,
    version: object = DEFAULT_VERSION,
    vendor: object = None,
    consent: object = DEFAULT_CONSENT,
    enabled: object = None,
    user: object = None,
    state_dir: object = None,
    shutdown_timeout: object = DEFAULT_SHUTDOWN_TIMEOUT,
    capture_logging: object = True,
    mode: object = DEFAULT_MODE,
    ci_budget: object = DEFAULT_CI_BUDGET,
    spool_max_bytes: object = DEFAULT_SPOOL_MAX_BYTES,
    spool_max_age: object = DEFAULT_SPOOL_MAX_AGE,
    sender_lifetime: object = DEFAULT_SENDER_LIFETIME,
    schema: object = None,
    automation: object = DEFAULT_AUTOMATION,
    notice_url: object = None,
    heartbeat: object = None,
    system_metrics: object = False,
    environ: "Mapping[str, str] | None" = None,
) -> Settings:
    """Check the arguments and read the variables, once.

    Raises :class:`SettingError` naming the first argument that cannot be used. A variable
    that cannot be used is not an error: it is ignored and named in ``problems``.
    """
    environ = os.environ if environ is None else environ
    name = check(locals())
    prefix = env.prefix_for(name)
    problems: list[str] = []
    return Settings(
        product=name,
        version=str(version),
        prefix=prefix,
        vendor=vendor,
        user=user,
        consent=consent,
        enabled=enabled,
        state_dir=chosen_state_dir(state_dir, prefix, environ),
        shutdown_timeout=float(shutdown_timeout),  # type: ignore[arg-type]
        capture_logging=bool(capture_logging),
        mode=mode,
        delivery_mode=_delivery_mode(mode, environ, prefix, problems),
        ci_budget=float(ci_budget),  # type: ignore[arg-type]
        spool_max_bytes=int(spool_max_bytes),  # type: ignore[call-overload]
        spool_max_age=float(spool_max_age),  # type: ignore[arg-type]
        sender_lifetime=float(sender_lifetime),  # type: ignore[arg-type]
        service_interval=_service_interval(environ, problems),
        schema=schema,
        automation=automation,
        notice_url=notice_url,
        heartbeat=_interval("heartbeat", heartbeat),
        # its own consent category: the user may refuse this part only
        system_metrics=system_metrics is True
        and _switch(environ, env.TELEMETRY_SYSTEM_METRICS, prefix, problems, unset=True),
        **_switches(environ, prefix, problems),
        problems=tuple(problems),
    )


def check(arguments: "Mapping[str, object]") -> str:
    """Check the ``instrument()`` arguments (every one :func:`resolve` takes, by name)
    without reading a variable, and return the product's name.

    A run decides consent right after this; with consent off nothing else is read (each
    variable that is not set costs ``os.environ`` two exceptions). Raises
    :class:`SettingError` naming the first argument that cannot be used.
    """
    product = arguments["product"]
    _check_arguments(
        product,
        arguments["consent"],
        arguments["enabled"],
        arguments["vendor"],
        arguments["user"],
        arguments["shutdown_timeout"],
        arguments["automation"],
        arguments["notice_url"],
        arguments["mode"],
    )
    _check_limits(
        arguments["ci_budget"],
        arguments["spool_max_age"],
        arguments["spool_max_bytes"],
        arguments["sender_lifetime"],
    )
    state_dir = arguments["state_dir"]
    if state_dir is not None and not isinstance(state_dir, str | os.PathLike):
        _refuse(f"instrument(state_dir={state_dir!r}): expected a path")
    for name in ("capture_logging", "system_metrics"):  # bool("no") would be True
        if not isinstance(arguments[name], bool):
            _refuse(f"instrument({name}={arguments[name]!r}): use True or False")
    if not isinstance(arguments["version"], str):
        _refuse(f"instrument(version={arguments['version']!r}): expected a string ('1.4.0')")
    _interval("heartbeat", arguments["heartbeat"])
    return product.strip()  # type: ignore[attr-defined,no-any-return]


def _switches(environ: "Mapping[str, str]", prefix: str, problems: list[str]) -> dict[str, object]:
    """The settings only the end user's environment sets."""
    return {
        "vendor_optout": _switch(environ, env.TELEMETRY_VENDOR_OPTOUT, prefix, problems, True),
        "schema_check": environ.get(env.SCHEMA_CHECK, ""),
        "detected": env.detected(environ, (*env.AGENT_VARIABLES, *env.CI_VARIABLES)),
        "nologo": _switch(environ, env.TELEMETRY_NOLOGO, prefix, problems),
        "debug": _switch(environ, env.TELEMETRY_DEBUG, prefix, problems, True),
    }


_MEANS = {
    env.TELEMETRY_VENDOR_OPTOUT: "the vendor's copy is off",
    env.TELEMETRY_NOLOGO: "the notice is shown",
    env.TELEMETRY_DEBUG: "debug mode: the payload is shown, nothing is sent",
    env.TELEMETRY_SYSTEM_METRICS: "system metrics are off",
}


def _switch(
    environ: "Mapping[str, str]",
    template: str,
    prefix: str,
    problems: list[str],
    unclear: bool = False,
    *,
    unset: bool = False,
) -> bool:
    """A yes/no variable of the end user's (``unset`` when it is not set). A value that is
    neither is named in ``problems`` and read as ``unclear``: the reading that sends less
    and shows the notice, as an unclear consent variable turns telemetry off."""
    name = template.format(prefix=prefix)
    raw = environ.get(name, "").strip()
    if not raw:
        return unset
    value = env.flag(raw)
    if value is None:
        problems.append(
            f"{name}={raw!r} is not a yes/no value (use 1/true/yes/on or 0/false/no/off); "
            f"{_MEANS[template]} until it is fixed"
        )
        return unclear
    return value


def _check_limits(*values: object) -> None:
    names = ("ci_budget", "spool_max_age", "spool_max_bytes", "sender_lifetime")
    uppers = (600, 10 * 365 * 86400, 1 << 40, 3600)
    for name, value, upper in zip(names, values, uppers, strict=True):
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= upper:
            _refuse(f"instrument({name}={value!r}): use a positive number up to {upper}")


def _check_arguments(
    product: object,
    consent: object,
    enabled: object,
    vendor: object,
    user: object,
    shutdown_timeout: object,
    automation: object,
    notice_url: object,
    mode: object,
) -> None:
    if not isinstance(product, str) or not product.strip():
        _refuse(f"instrument(product={product!r}): the product name must be a non-empty string")
    if consent not in CONSENTS:
        _refuse(f"instrument(consent={consent!r}): use 'opt-in' or 'opt-out'")
    if enabled is not None and not isinstance(enabled, bool):
        _refuse(f"instrument(enabled={enabled!r}): use True, False or None")
    for name, value in (("vendor", vendor), ("user", user)):
        if value is not None and not isinstance(value, str) and not _is_destination(value):
            _refuse(
                f"instrument({name}=...): expected a URL, a connection string "
                f"or a Destination, got {type(value).__name__}"
            )
    if (
        not isinstance(shutdown_timeout, int | float)
        or isinstance(shutdown_timeout, bool)
        or not 0 <= shutdown_timeout < 3600
    ):
        _refuse(
            f"instrument(shutdown_timeout={shutdown_timeout!r}): "
            "use a number of seconds between 0 and 3600"
        )
    if automation not in AUTOMATIONS:
        _refuse(f"instrument(automation={automation!r}): use 'tag', 'collapse' or 'drop'")
    if notice_url is not None and not isinstance(notice_url, str):
        _refuse(f"instrument(notice_url={notice_url!r}): expected a URL")
    if mode not in MODES:
        _refuse(f"instrument(mode={mode!r}): use 'auto', 'cli', 'ci' or 'service'")


def _refuse(message: str) -> "NoReturn":
    """Raise ``SettingError`` (imported here: a valid call never needs the module)."""
    from phonehome._core.errors import SettingError

    raise SettingError(message) from None


def _is_destination(value: object) -> bool:
    from phonehome._core.destinations import Destination

    return isinstance(value, Destination)


def chosen_state_dir(
    argument: object, prefix: str, environ: "Mapping[str, str] | None" = None
) -> str | None:
    """``state_dir=``, then ``<PREFIX>_TELEMETRY_DIR``; ``None`` for the platform's."""
    if argument is not None:
        return os.fspath(argument)  # type: ignore[call-overload, no-any-return]
    environ = os.environ if environ is None else environ
    return environ.get(env.TELEMETRY_DIR.format(prefix=prefix)) or None


def platform_state_dir(product: str, environ: "Mapping[str, str] | None" = None) -> str:
    """The default state directory: the platform's per-user state directory, as
    platformdirs defines it, ``/phonehome/<product>``.

    Written out here because an opted-out run must be able to find (and purge) held data
    without paying for an import: ``$XDG_STATE_HOME`` or ``~/.local/state`` on Linux and the
    BSDs, ``~/Library/Application Support`` on macOS, ``%LOCALAPPDATA%`` on Windows.
    """
    environ = os.environ if environ is None else environ
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        root = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        root = os.path.join(home, "Library", "Application Support")
    else:
        xdg = environ.get("XDG_STATE_HOME", "").strip()
        root = xdg if xdg and os.path.isabs(xdg) else os.path.join(home, ".local", "state")
    return os.path.join(root, "phonehome", product)


def platform_config_dir(environ: "Mapping[str, str] | None" = None) -> str:
    """The platform's per-user configuration directory, as platformdirs defines it.

    ``$XDG_CONFIG_HOME`` or ``~/.config`` on Linux and the BSDs, ``~/Library/Application
    Support`` on macOS, ``%APPDATA%`` on Windows.
    """
    environ = os.environ if environ is None else environ
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        return environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support")
    xdg = environ.get("XDG_CONFIG_HOME", "").strip()
    return xdg if xdg and os.path.isabs(xdg) else os.path.join(home, ".config")


def user_file(environ: "Mapping[str, str] | None" = None) -> str:
    """The user-wide choice for every product built on phonehome (``phonehome disable
    --all``): ``<user config directory>/phonehome/config.toml``."""
    return os.path.join(platform_config_dir(environ), "phonehome", USER_FILE_NAME)


def policy_file(environ: "Mapping[str, str] | None" = None) -> str:
    """The machine policy: ``PHONEHOME_POLICY_FILE``, else ``/etc/phonehome/policy.toml``
    (``/Library/Application Support/phonehome`` on macOS, ``%PROGRAMDATA%\\phonehome`` on
    Windows), where administrators, packagers and CI images put it."""
    environ = os.environ if environ is None else environ
    override = environ.get(env.POLICY_FILE, "").strip()
    if override:
        return override
    if sys.platform == "win32":
        root = environ.get("PROGRAMDATA") or os.path.join("C:\\", "ProgramData")
    elif sys.platform == "darwin":
        root = os.path.join("/Library", "Application Support")
    else:
        root = "/etc"
    return os.path.join(root, "phonehome", POLICY_FILE_NAME)


def _delivery_mode(
    mode: object, environ: "Mapping[str, str]", prefix: str, problems: list[str]
) -> str:
    """The code's mode; if ``auto``: ``<PREFIX>_TELEMETRY_MODE``, else CI detection."""
    if mode != "auto":
        return str(mode)
    name = env.TELEMETRY_MODE.format(prefix=prefix)
    forced = environ.get(name, "").strip().lower()
    if forced in ("cli", "ci", "service"):
        return forced
    if forced and forced != "auto":
        problems.append(f"{name}={forced!r} is not one of cli, ci, service, auto; using auto")
    return "ci" if env.detected(environ, env.CI_VARIABLES) else "cli"


def _service_interval(environ: "Mapping[str, str]", problems: list[str]) -> float:
    """``OTEL_BSP_SCHEDULE_DELAY`` (ms), as the SDK's batch processor reads it."""
    raw = environ.get("OTEL_BSP_SCHEDULE_DELAY", "").strip()
    if not raw:
        return DEFAULT_SERVICE_INTERVAL
    try:
        return max(0.05, float(raw) / 1000)
    except ValueError:
        problems.append(
            f"OTEL_BSP_SCHEDULE_DELAY={raw!r} is not a number of milliseconds; "
            f"using {DEFAULT_SERVICE_INTERVAL * 1000:.0f}"
        )
        return DEFAULT_SERVICE_INTERVAL


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def interval(value: object) -> float:
    """Seconds from ``"24h"``, ``"30m"``, ``"7d"``, ``"10s"`` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    text = str(value).strip().lower()
    if text and text[-1] in _UNITS and text[:-1].replace(".", "", 1).isdigit():
        seconds = float(text[:-1]) * _UNITS[text[-1]]
        if seconds > 0:
            return seconds
    raise ValueError(f"{value!r} is not an interval like '24h', '30m' or a number of seconds")


def _interval(name: str, value: object) -> float | None:
    if value is None:
        return None
    try:
        return interval(value)
    except ValueError as error:
        _refuse(f"instrument({name}={value!r}): {error}")
