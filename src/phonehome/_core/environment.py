"""Every environment variable phonehome reads, named once.

Per-product variables are templates: ``{prefix}`` is the product name upper-cased with
every non-alphanumeric character replaced by ``_`` (``democli`` -> ``DEMOCLI``).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

DO_NOT_TRACK = "DO_NOT_TRACK"
"""The cross-tool opt-out (https://consoledonottrack.com): a true value turns telemetry off."""

OTEL_SDK_DISABLED = "OTEL_SDK_DISABLED"
"""OpenTelemetry's own kill switch: ``true`` turns telemetry off."""

TELEMETRY_OPTOUT = "{prefix}_TELEMETRY_OPTOUT"
"""The product's opt-out variable, e.g. ``DEMOCLI_TELEMETRY_OPTOUT=1``."""

TELEMETRY_LEVEL = "{prefix}_TELEMETRY_LEVEL"
"""``off``, ``crash`` (unhandled exceptions only), ``error`` (and failures) or ``all``."""

TELEMETRY_VENDOR_OPTOUT = "{prefix}_TELEMETRY_VENDOR_OPTOUT"
"""True: the vendor's copy stops; the user's own destinations still receive."""

TELEMETRY_DEBUG = "{prefix}_TELEMETRY_DEBUG"
"""True: print the exact payload per destination to stderr and send nothing."""

TELEMETRY_SYSTEM_METRICS = "{prefix}_TELEMETRY_SYSTEM_METRICS"
"""False: no infrastructure metrics (CPU, memory, disk, network), the rest unchanged."""

TELEMETRY_NOLOGO = "{prefix}_TELEMETRY_NOLOGO"
"""True: do not print the first-run notice (consent is unchanged), like ``DOTNET_NOLOGO``."""

LEVELS = ("off", "crash", "error", "all")

SCHEMA_CHECK = "PHONEHOME_SCHEMA_CHECK"
"""Set by ``phonehome schema check``: the file where runs report undeclared fields (they
then write and send nothing)."""

POLICY_FILE = "PHONEHOME_POLICY_FILE"
"""The machine policy file to read instead of the platform's (``/etc/phonehome/policy.toml``
on Linux): for CI images, packagers and tests."""

TELEMETRY_MODE = "{prefix}_TELEMETRY_MODE"
"""Forces the delivery mode (``cli``, ``ci``, ``service``) when the code leaves it ``auto``,
e.g. ``ci`` in a container that lives for one command."""

TELEMETRY_DIR = "{prefix}_TELEMETRY_DIR"
"""Overrides the state directory (stored consent, install id)."""

APPLICATIONINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
"""The user's own Azure Monitor destination."""

AZURE_AUTHENTICATION = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
"""Entra ID (managed identity) authentication for Azure Monitor: the user's ambient
credential, used for the user's own Azure destination only, never for the vendor's."""

OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
OTEL_EXPORTER_OTLP_PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
SIGNALS = ("traces", "metrics", "logs")
"""The user's own OTLP destination is configured by the standard ``OTEL_EXPORTER_OTLP_*``
variables, read by the OpenTelemetry exporters themselves."""

USER_DESTINATION_PREFIXES = (
    "OTEL_EXPORTER_OTLP_",
    "OTEL_PYTHON_EXPORTER_OTLP_",
    APPLICATIONINSIGHTS_CONNECTION_STRING,
    AZURE_AUTHENTICATION,
)
"""Variables that configure (and may carry credentials for) the user's destination. They are
hidden from every exporter built for another destination."""

AZURE_QUIET = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}
"""Set whenever an Azure Monitor destination is built: the exporter's self-reporting
(statsbeat, SDK stats) and control-plane calls would send data nobody asked for."""

CI_VARIABLES = (
    ("GITHUB_ACTIONS", "github-actions"),
    ("GITLAB_CI", "gitlab"),
    ("TF_BUILD", "azure-pipelines"),
    ("BUILDKITE", "buildkite"),
    ("CIRCLECI", "circleci"),
    ("JENKINS_URL", "jenkins"),
    ("TEAMCITY_VERSION", "teamcity"),
    ("TRAVIS", "travis"),
    ("APPVEYOR", "appveyor"),
    ("CODEBUILD_BUILD_ID", "aws-codebuild"),
    ("BITBUCKET_BUILD_NUMBER", "bitbucket"),
    ("DRONE", "drone"),
    ("CI", "ci"),
)
"""Variables that reveal a CI provider (the generic ``CI`` last)."""

AGENT_VARIABLES = (
    ("CLAUDECODE", "claude-code"),
    ("CURSOR_AGENT", "cursor"),
    ("GEMINI_CLI", "gemini-cli"),
    ("CODEX_SANDBOX", "codex"),
    ("OPENCODE", "opencode"),
    ("AIDER_MODEL", "aider"),
    ("REPL_ID", "replit"),
)
"""Variables that reveal an AI coding agent running the program."""


def prefix_for(product: str) -> str:
    """The variable prefix for a product name: ``my-cli`` -> ``MY_CLI``."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in product).upper()


def instrument_name(product: str) -> str:
    """A product name made valid as an OpenTelemetry instrument name prefix."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in "_.-/") else "_" for c in product)
    return name if name[:1].isalpha() else "p" + name


def detected(environ: "Mapping[str, str]", table: "Iterable[tuple[str, str]]") -> str | None:
    """The name in ``table`` whose variable is set (and not to a false value), if any."""
    for variable, who in table:
        value = environ.get(variable, "").strip()
        if value and flag(value) is not False:
            return who
    return None


def flag(value: str) -> bool | None:
    """Parse a yes/no variable value; ``None`` when it is neither."""
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    return None
