"""Every setting in one table: the argument and variables that set it, its default, what it
does and which source wins.

``docs/configuration.md``'s tables are generated from it (``python -m
phonehome._core.table``), and tests keep the two equal and check that every variable
phonehome reads and every ``instrument()`` argument is a row. The defaults are the constants
of ``phonehome._core.settings``, where :func:`~phonehome._core.settings.resolve` applies
this precedence once per ``instrument()`` call.
"""

from __future__ import annotations

from phonehome._core import environment as env
from phonehome._core.settings import (
    DEFAULT_AUTOMATION,
    DEFAULT_CI_BUDGET,
    DEFAULT_CONSENT,
    DEFAULT_MODE,
    DEFAULT_SENDER_LIFETIME,
    DEFAULT_SERVICE_INTERVAL,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_SPOOL_MAX_AGE,
    DEFAULT_SPOOL_MAX_BYTES,
    DEFAULT_VERSION,
    PROMOTE_AFTER,
)


class Row:
    """One setting: the argument and variables that set it, its default, what it does."""

    __slots__ = ("argument", "default", "effect", "meaning", "name", "variables")

    def __init__(
        self,
        name: str,
        *,
        argument: bool = False,
        variables: tuple[str, ...] = (),
        default: str = "",
        meaning: str = "",
        effect: str = "",
    ) -> None:
        self.name = name
        self.argument = argument
        self.variables = variables
        self.default = default
        self.meaning = meaning
        """What the argument does (the arguments table)."""
        self.effect = effect
        """What the variables do, and how they rank against the argument (variables table)."""


_MIB = 1024 * 1024
TABLE: tuple[Row, ...] = (
    Row(
        "product",
        argument=True,
        default="required",
        meaning="The product's name: `service.name`, and the variable prefix "
        "(`my-cli` -> `MY_CLI`).",
    ),
    Row("version", argument=True, default=repr(DEFAULT_VERSION), meaning="`service.version`."),
    Row(
        "vendor",
        argument=True,
        variables=(env.TELEMETRY_VENDOR_OPTOUT,),
        default="`None`",
        meaning="The vendor's destination: an OTLP/HTTP base URL, an Azure Monitor connection "
        "string, or a `Destination` (`phonehome.otlp(...)`, `phonehome.azure(...)`).",
        effect="true: the vendor's copy stops, the user's own destinations still receive",
    ),
    Row(
        "consent",
        argument=True,
        default=repr(DEFAULT_CONSENT),
        meaning='`"opt-out"`: on unless refused (.NET, Kiota). `"opt-in"`: off until enabled '
        "(AKS Engine).",
    ),
    Row(
        "enabled",
        argument=True,
        default="`None`",
        meaning="The product's own configuration flag (AKS `enableTelemetry`). `False` turns "
        'everything off; `True` turns it on unless an "off" source above it says otherwise.',
    ),
    Row(
        "do_not_track",
        variables=(env.DO_NOT_TRACK,),
        effect='true: telemetry off; any "off" wins (the order: Consent, above)',
    ),
    Row("optout", variables=(env.TELEMETRY_OPTOUT,), effect="true: telemetry off"),
    Row("otel_sdk_disabled", variables=(env.OTEL_SDK_DISABLED,), effect="true: telemetry off"),
    Row(
        "machine_policy",
        variables=(env.POLICY_FILE,),
        default="`/etc/phonehome/policy.toml`",
        effect="the machine policy file to read instead of the platform's "
        "(`/etc/phonehome/policy.toml` on Linux): `telemetry`, `vendor`, `endpoint` "
        "(see One switch for every tool, above)",
    ),
    Row(
        "user_wide",
        variables=("XDG_CONFIG_HOME",),
        default="`~/.config/phonehome/config.toml`",
        effect="where the user's choice for every product lives (`phonehome disable --all`): "
        "`$XDG_CONFIG_HOME` (or `~/.config`) `/phonehome/config.toml` on Linux",
    ),
    Row(
        "level",
        variables=(env.TELEMETRY_LEVEL,),
        default="`all`",
        effect="`off`, `crash`, `error` or `all` (default); any other value is `off`, with "
        "one warning",
    ),
    Row(
        "user",
        argument=True,
        variables=(
            env.OTEL_EXPORTER_OTLP_ENDPOINT,
            "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT",
            env.APPLICATIONINSIGHTS_CONNECTION_STRING,
        ),
        default="`None`",
        meaning="The product's configuration value for the user's own destination (AKS "
        "`applicationInsightsKey`), same forms as `vendor`.",
        effect="the user's own destinations, beside `user=`: OTLP (with per-signal endpoints "
        "only, only those signals go there) and Azure Monitor",
    ),
    Row(
        "azure_authentication",
        variables=(env.AZURE_AUTHENTICATION,),
        effect="Entra ID authentication for the user's own Azure Monitor destination; never "
        "used for the vendor's",
    ),
    Row(
        "user_settings",
        variables=(
            "OTEL_EXPORTER_OTLP_[{SIGNAL}_]HEADERS, _PROTOCOL, _TIMEOUT, _COMPRESSION, "
            "_CERTIFICATE, _INSECURE",
        ),
        effect="the user's OTLP destination's settings, read by the OpenTelemetry exporters "
        "as usual; never applied to the vendor",
    ),
    Row(
        "state_dir",
        argument=True,
        variables=(env.TELEMETRY_DIR, "XDG_STATE_HOME"),
        default="`None` (the platform's)",
        meaning="Where the stored consent, the install id and the spool live.",
        effect="the state directory when `state_dir=` is not given; else `$XDG_STATE_HOME` "
        "(or `~/.local/state`) `/phonehome/<product>` on Linux",
    ),
    Row(
        "shutdown_timeout",
        argument=True,
        default=repr(DEFAULT_SHUTDOWN_TIMEOUT),
        meaning="In `service` mode: seconds the end of the block may spend delivering what is "
        "left.",
    ),
    Row(
        "capture_logging",
        argument=True,
        default="`True`",
        meaning="Send the host's `logging` records at WARNING and above.",
    ),
    Row(
        "mode",
        argument=True,
        variables=(env.TELEMETRY_MODE,),
        default=repr(DEFAULT_MODE),
        meaning='`"cli"`, `"ci"`, `"service"` or `"auto"` (CI detected: `ci`, else `cli`, '
        f"becoming `service` after {PROMOTE_AFTER:.0f} s); see [delivery.md](delivery.md).",
        effect='`cli`, `ci` or `service`, when the code leaves `mode="auto"` (e.g. `ci` in '
        "a container that lives for one command)",
    ),
    Row(
        "ci",
        variables=("CI", "GITHUB_ACTIONS", "GITLAB_CI", "TF_BUILD", "..."),
        effect="CI detected: `auto` means `ci`; the run is an automation run (`automation=`)",
    ),
    Row(
        "ci_budget",
        argument=True,
        default=repr(DEFAULT_CI_BUDGET),
        meaning="In `ci` mode: seconds the end of the block may spend delivering.",
    ),
    Row(
        "spool_max_bytes",
        argument=True,
        default=f"{DEFAULT_SPOOL_MAX_BYTES // _MIB} MiB",
        meaning="The spool's size cap; the oldest records go first, counted.",
    ),
    Row(
        "spool_max_age",
        argument=True,
        default=f"{DEFAULT_SPOOL_MAX_AGE / 86400:.0f} days",
        meaning="Seconds a record may wait in the spool.",
    ),
    Row(
        "sender_lifetime",
        argument=True,
        default=repr(DEFAULT_SENDER_LIFETIME),
        meaning="The detached sender's hard lifetime cap, in seconds.",
    ),
    Row(
        "service_interval",
        variables=("OTEL_BSP_SCHEDULE_DELAY",),
        default=f"{DEFAULT_SERVICE_INTERVAL * 1000:.0f} ms",
        effect="milliseconds between a service's deliveries",
    ),
    Row(
        "schema",
        argument=True,
        variables=(env.SCHEMA_CHECK,),
        default="`None`",
        meaning="A `phonehome.Schema` or the path of a TOML file: what may be sent "
        "([privacy.md](privacy.md)).",
        effect="set by `phonehome schema check -- COMMAND`: runs report undeclared fields "
        "there, and write and send nothing (not even an install id)",
    ),
    Row(
        "automation",
        argument=True,
        variables=("CLAUDECODE", "CURSOR_AGENT", "GEMINI_CLI", "..."),
        default=repr(DEFAULT_AUTOMATION),
        meaning='Under CI or an AI coding agent: `"tag"`, `"collapse"` or `"drop"`.',
        effect="an AI coding agent detected: the run is an automation run (`automation=`)",
    ),
    Row(
        "notice_url",
        argument=True,
        default="`None`",
        meaning="Where the first-run notice sends people to read more.",
    ),
    Row(
        "nologo",
        variables=(env.TELEMETRY_NOLOGO,),
        effect="true: do not print the first-run notice (it counts as seen; consent unchanged)",
    ),
    Row(
        "heartbeat",
        argument=True,
        default="`None`",
        meaning='Send a `heartbeat` event at most once per this interval (`"24h"`).',
    ),
    Row(
        "system_metrics",
        argument=True,
        variables=(env.TELEMETRY_SYSTEM_METRICS,),
        default="`False`",
        meaning="In `service` mode: process and host CPU, memory, disk, network metrics "
        "(`phonehome[system]`).",
        effect="false: no infrastructure metrics, the rest unchanged (wins over the argument)",
    ),
    Row(
        "debug",
        variables=(env.TELEMETRY_DEBUG,),
        effect="true: print the exact payload per destination to stderr, send nothing",
    ),
    Row(
        "resource",
        variables=("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"),
        effect="override resource attributes",
    ),
    Row(
        "sampler",
        variables=("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"),
        effect="the sampler used while consent is on",
    ),
)


# -- docs/configuration.md -----------------------------------------------------------------------
def arguments_table() -> str:
    """The ``instrument()`` arguments, as the markdown table in ``docs/configuration.md``."""
    lines = ["| argument | default | meaning |", "| --- | --- | --- |"]
    for row in TABLE:
        if row.argument:
            default = row.default if row.default.startswith("`") else _code(row.default)
            lines.append(f"| `{row.name}` | {default} | {row.meaning} |")
    return "\n".join(lines)


def variables_table() -> str:
    """Every variable phonehome reads, as the markdown table in ``docs/configuration.md``."""
    lines = ["| variable | setting | effect |", "| --- | --- | --- |"]
    for row in TABLE:
        if row.variables:
            names = ", ".join(f"`{v.replace('{prefix}', '<PREFIX>')}`" for v in row.variables)
            setting = f"`{row.name}=`" if row.argument else row.name.replace("_", " ")
            lines.append(f"| {names} | {setting} | {row.effect} |")
    return "\n".join(lines)


def _code(text: str) -> str:
    if text.startswith("'") and text.endswith("'"):
        return f'`"{text[1:-1]}"`'
    return f"`{text}`" if text.replace(".", "", 1).isdigit() else text


GENERATED = {"arguments": arguments_table, "variables": variables_table}
"""The generated regions of ``docs/configuration.md``, between ``<!-- generated: NAME -->``
and ``<!-- end generated -->``."""


def render(document: str) -> str:
    """``document`` with every generated region written afresh from the table."""
    for name, make in GENERATED.items():
        start = f"<!-- generated: {name} -->\n"
        before, found, rest = document.partition(start)
        if not found:
            raise ValueError(f"no {start.strip()} region")
        _, end, after = rest.partition("<!-- end generated -->")
        if not end:
            raise ValueError(f"the {name} region has no end marker")
        document = f"{before}{start}{make()}\n{end}{after}"
    return document


if __name__ == "__main__":
    import sys

    path = sys.argv[1]
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render(text))
