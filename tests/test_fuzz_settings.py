"""Destination and schema settings, fuzzed: whatever the text, the host never notices.

Property-based tests for the settings ``test_bad_input`` leaves out: the ``vendor=`` and
``user=`` strings, the ``OTEL_EXPORTER_OTLP_*`` and ``APPLICATIONINSIGHTS_CONNECTION_STRING``
variables, ``phonehome.otlp()`` and ``phonehome.azure()`` called directly, and schema files.
Whatever the text in those places: no exception reaches the host, the command's body runs,
phonehome prints at most one line per problem, each starting with ``phonehome:``; a bad
setting is reported and skipped, never turning telemetry off without a word; and what
phonehome validates is what the exporters then use. (A piece of the reliability suites.)

Only loopback may be touched. Delivery runs for real here (``mode="ci"``, a tiny budget),
and a fuzzed endpoint or connection string could name a real host (``http://a.example``,
or an Azure connection string without ``IngestionEndpoint``: Microsoft's global endpoint).
So:

- ASCII letters and digits come only from fixed fragments, whose hosts are ``127.0.0.1``,
  ``[::1]`` and ``localhost`` or malformed ones (``[::1``, ``127.0.0.1.``), and whose
  ``<otlp-port>``/``<azure-port>`` become the ports of a live receiver and Azure stub;
- ``assume(loopback_destination(...))`` / ``loopback_environment`` then drop every value
  from which urllib3 (what requests, hence the OTLP/HTTP and Azure exporters, connects
  with), ``urllib.parse`` (the gRPC exporter's target) or the Azure SDK's own connection
  string parser would take another host. Values no client can parse stay: they connect
  nowhere;
- ``loopback_guard``, on ``socket.getaddrinfo`` and ``socket.connect`` in this process and
  in the subprocess hosts, refuses any other name or address and fails the test. The gRPC
  exporter resolves names in C, below that guard: its target must be exactly a loopback
  host and port to pass ``loopback_url``.

``test_what_phonehome_validates_is_what_the_exporters_use`` names other hosts, but builds no
exporter and opens no socket.
"""

from __future__ import annotations

import contextlib
import inspect
import ipaddress
import re
import socket
import string
import textwrap
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

import phonehome
from phonehome._core import destinations as _destinations
from phonehome._core import diagnostics as _diagnostics
from phonehome._sender import exporters as _exporters
from phonehome.testing import AzureIngestion, OTLPReceiver
from tests import figures
from tests.conftest import clean_environ, run_python

ROW = figures.row("input")
FUZZ = settings(
    max_examples=figures.scale(15, 200), deadline=None, suppress_health_check=list(HealthCheck)
)
HOSTS_FUZZ = settings(
    max_examples=figures.scale(5, 40), deadline=None, suppress_health_check=list(HealthCheck)
)
KEY = "11111111-2222-3333-4444-555555555555"


# -- only loopback ---------------------------------------------------------------------------
def allowed_address(host: object) -> bool:
    """Whether a name or address is loopback (the guard's test; stdlib only: it is also
    copied into the subprocess hosts)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).lower()
    if name in ("localhost", "[::1]"):
        return True
    try:
        return ipaddress.ip_address(name.partition("%")[0]).is_loopback
    except ValueError:
        return False


_GRPC_TARGET = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\])(?::[^@\[\]A-Za-z,]*)?", re.I)
"""A gRPC target (``urlparse(endpoint).netloc``) that can only mean loopback."""


def loopback_url(url: str) -> bool:
    """Whether the OTLP/HTTP, Azure and gRPC clients given ``url`` reach loopback or nothing."""
    import urllib3

    for text in {url, url.strip(), url.rstrip("/") + "/v1/traces"}:
        try:
            host = urllib3.util.parse_url(text.lstrip()).host
        except Exception:  # refused: no connection
            host = None
        if host and host.lower() not in ("127.0.0.1", "[::1]", "localhost"):
            return False
        try:
            netloc = urllib.parse.urlsplit(text).netloc
        except ValueError:
            continue
        if netloc and not _GRPC_TARGET.fullmatch(netloc):
            return False
    return True


def azure_sdk_endpoint(connection_string: str) -> str | None:
    """The endpoint the Azure Monitor exporter takes from ``connection_string`` (its own
    parser, not phonehome's), ``None`` if the exporter refuses it."""
    try:
        from azure.monitor.opentelemetry.exporter._connection_string_parser import (
            ConnectionStringParser,
        )
    except ImportError:  # no exporter, no connection
        return None
    try:  # (it also reads APPLICATIONINSIGHTS_CONNECTION_STRING: unset here, hidden there)
        return str(ConnectionStringParser(connection_string).endpoint)
    except ValueError:
        return None


def loopback_destination(value: str | None) -> bool:
    """Whether the destination phonehome builds from a ``vendor=``/``user=`` string or
    ``APPLICATIONINSIGHTS_CONNECTION_STRING`` can reach loopback only."""
    if not value:
        return True
    try:
        destination = _destinations.parse(value)
    except Exception:  # refused: nothing is built
        return True
    if destination.kind == "azure":
        endpoint = azure_sdk_endpoint(destination.connection_string)
        return endpoint is None or loopback_url(endpoint)
    return loopback_url(destination.endpoint)


ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def loopback_environment(environment: dict[str, str]) -> bool:
    """Whether the exporters reading these variables can reach loopback only. An endpoint
    phonehome refuses is safe whatever it says: the destination from the variables is then
    skipped as a whole."""
    for name in ENDPOINT_VARIABLES:
        value = environment.get(name, "")
        if not value.strip() or loopback_url(value):
            continue
        try:
            _destinations.check_url(value)
        except Exception:
            continue
        return False
    return loopback_destination(environment.get("APPLICATIONINSIGHTS_CONNECTION_STRING"))


@pytest.fixture(autouse=True)
def loopback_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse (and fail the test for) any name or address that is not loopback."""
    refused: list[object] = []

    def refuse(what: object) -> None:
        refused.append(what)
        raise OSError(f"the fuzz tests may touch loopback only, not {what!r}")

    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not allowed_address(host):
            refuse(host)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in ("connect", "connect_ex"):
        original = getattr(socket.socket, name)

        def guarded(self: socket.socket, address: Any, _original: Any = original) -> Any:
            if isinstance(address, tuple) and not allowed_address(address[0]):
                refuse(address[0])
            return _original(self, address)

        monkeypatch.setattr(socket.socket, name, guarded)
    yield
    assert refused == [], f"the loopback filter let these through: {refused}"


GUARD = (
    "import ipaddress, socket, sys\n"
    + textwrap.dedent(inspect.getsource(allowed_address))
    + """
def _refuse(what):
    sys.stderr.write(f"GUARD: refused {what!r}\\n")
    raise OSError("the fuzz tests may touch loopback only")
_resolve = socket.getaddrinfo
def _getaddrinfo(host, *args, **kwargs):
    if not allowed_address(host):
        _refuse(host)
    return _resolve(host, *args, **kwargs)
socket.getaddrinfo = _getaddrinfo
for _name in ("connect", "connect_ex"):
    def _guarded(self, address, _original=getattr(socket.socket, _name)):
        if isinstance(address, tuple) and not allowed_address(address[0]):
            _refuse(address[0])
        return _original(self, address)
    setattr(socket.socket, _name, _guarded)
"""
)
"""The same guard, for a subprocess host (a refusal is a stray stderr line there)."""


# -- what is fuzzed --------------------------------------------------------------------------
NOISE = "\x00\t\n\r\x0b\x0c\x1b\x7f\x85\u2028 %;=,:@/\\?#[]\"'&+<>|^`{}~!$*()-._"


def noise(environ: bool) -> st.SearchStrategy[str]:
    """Text without ASCII letters or digits (those come from fragments): control characters,
    punctuation, non-ASCII letters and digits, lone surrogates where a ``str`` takes them
    (in the environment: NUL is impossible, and a surrogate is a byte that is not UTF-8)."""
    chars = st.one_of(
        st.sampled_from(NOISE[1:] if environ else NOISE),
        st.characters(
            exclude_categories=["Cs"],
            exclude_characters=string.ascii_letters + string.digits + "\x00",
        ),
        st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)
        if environ
        else st.characters(categories=["Cs"]),
    )
    return st.text(chars, max_size=6)


def joined(*parts: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(*parts).map("".join)


def pieces(fragments: list[str], environ: bool, size: int = 8) -> st.SearchStrategy[str]:
    """Fragments and noise strung together in any order."""
    return st.lists(st.one_of(st.sampled_from(fragments), noise(environ)), max_size=size).map(
        "".join
    )


def maybe(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), strategy)


SCHEMES = ["http://", "https://", "grpc://", "HTTP://", "http:/", "://", "http", ""]
HOSTS = ["127.0.0.1", "[::1]", "localhost", "", "[::1", "::1]", "127.0.0.1.", "[127.0.0.1]"]
PORTS = ["", ":", ":<otlp-port>", ":99999", ":0", ":1", ":65536", ":-1", ":²", ":٣", ":4318:"]
PATHS = ["", "/", "/v1", "/v1/traces", "?a=b", "#x", "/%", "/%zz", "//", "/\x00", "/é"]


def long(prefix: str = "", fill: str = "x") -> st.SearchStrategy[str]:
    """A very long string (built when drawn: a literal would bloat every repr)."""
    return st.integers(1_000, 20_000).map(lambda n: prefix + fill * n)


def urls(environ: bool) -> st.SearchStrategy[str]:
    """Endpoints: a URL's parts, each fragment or noise, or fragments in any order."""

    def part(choices: list[str]) -> st.SearchStrategy[str]:
        if environ:  # a variable cannot hold NUL
            choices = [c for c in choices if "\x00" not in c]
        return st.one_of(st.sampled_from(choices), noise(environ))

    fragments = SCHEMES + HOSTS + PORTS + PATHS + ["InstrumentationKey=", "%", "\r\n", ","]
    if environ:
        fragments = [f for f in fragments if "\x00" not in f]
    return st.one_of(
        joined(maybe(noise(environ)), part(SCHEMES), part(HOSTS), part(PORTS), part(PATHS)),
        joined(st.sampled_from(SCHEMES), st.sampled_from(HOSTS), st.sampled_from(PORTS)),
        pieces(fragments, environ),
        long("http://127.0.0.1:<otlp-port>/"),
        long(),
    )


KEYS = ["InstrumentationKey", "IngestionEndpoint", "instrumentationkey", "INGESTIONENDPOINT"]
KEYS += ["EndpointSuffix", "Location", "Authorization", "LiveEndpoint", "AadAudience", ""]
KEY_VALUES = [KEY, KEY.upper(), KEY.replace("-", ""), KEY[:-1], "", "ikey", "localhost"]


def connection_strings(environ: bool) -> st.SearchStrategy[str]:
    """Azure Monitor connection strings: ``Key=Value`` parts, perturbed."""
    endpoint = st.one_of(
        st.just("http://127.0.0.1:<azure-port>/"),
        st.just("http://127.0.0.1:<azure-port>"),
        urls(environ),
    )
    value = st.one_of(st.sampled_from(KEY_VALUES), endpoint, noise(environ))
    key = st.one_of(st.sampled_from(KEYS), noise(environ))
    pair = joined(maybe(noise(environ)), key, st.sampled_from(["=", "", "==", " = "]), value)
    separator = st.one_of(
        st.sampled_from([";", "; ", " ;", ";;", "\n", "\r\n", ","]), noise(environ)
    )
    good = st.just(f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:<azure-port>/")
    return st.one_of(
        good,
        st.lists(st.tuples(pair, separator), min_size=1, max_size=4).map(
            lambda parts: "".join(p + s for p, s in parts)
        ),
        pieces(["InstrumentationKey=", "IngestionEndpoint=", KEY, ";", "=", *HOSTS], environ),
        long("InstrumentationKey="),
    )


def destination_text(environ: bool) -> st.SearchStrategy[str]:
    return st.one_of(urls(environ), connection_strings(environ))


HEADER_FRAGMENTS = ["api-key=secret", "a=b", "Authorization=Basic%20eA==", ",", "=", "%"]
HEADER_FRAGMENTS += ["%2", "%zz", " ", "\n", "\r\n", "k", "é=é"]


def header_values(environ: bool) -> st.SearchStrategy[str]:
    return st.one_of(pieces(HEADER_FRAGMENTS, environ), long("key=", "v"))


VARIABLES: dict[str, st.SearchStrategy[str]] = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": urls(environ=True),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": urls(environ=True),
    "OTEL_EXPORTER_OTLP_HEADERS": header_values(environ=True),
    "OTEL_EXPORTER_OTLP_PROTOCOL": st.one_of(
        st.sampled_from(["grpc", "http/protobuf", "http/json", " grpc ", "GRPC", ""]),
        pieces(["grpc", "http/protobuf"], environ=True, size=3),
    ),
    "OTEL_EXPORTER_OTLP_TIMEOUT": st.one_of(
        st.sampled_from(["10", "0", "-1", "nan", "inf", "1e999", "10s", "", "0.001"]),
        pieces(["1", "0", ".", "e", "-"], environ=True, size=4),
    ),
    "OTEL_EXPORTER_OTLP_COMPRESSION": st.one_of(
        st.sampled_from(["gzip", "none", "deflate", "GZIP", "zip", ""]),
        pieces(["gzip", "none"], environ=True, size=3),
    ),
    # no "/" in the noise: a path such as /dev/zero would be read to the end
    "OTEL_EXPORTER_OTLP_CERTIFICATE": st.one_of(
        st.sampled_from(["", ".", "..", "/nonexistent/ca.pem", "missing.pem"]),
        long(),
        noise(environ=True).map(lambda text: text.replace("/", "")),
    ),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": connection_strings(environ=True),
}
environments = st.fixed_dictionaries({}, optional=VARIABLES)  # type: ignore[arg-type]

TOML_FRAGMENTS = [
    "[events.x]",
    "[events.x.attributes.a]",
    "[events.x.attributes]",
    "[commands.c]",
    "[commands.c.params.p]",
    "[attributes]",
    "[attributes.a]",
    "[events]",
    "[commands]",
    "[[events]]",
    "kind = ",
    "type = ",
    "policy = ",
    "values = ",
    "collect = ",
    "description = ",
    "scrub = ",
    "reason = ",
    "params = ",
    "attributes = ",
    "commands = ",
    "events = ",
    "x = ",
    '"hash"',
    '"enum"',
    '"raw"',
    '"drop"',
    '"presence"',
    '"string"',
    '"int"',
    "true",
    "false",
    "1",
    "nan",
    '[1, "a"]',
    '["a", "b"]',
    "[]",
    "{}",
    '{ type = "int" }',
    '{ policy = "enum" }',
    "\n",
    "\r\n",
    "=",
    '"',
    "[",
    "]",
    '"\\u001b[31m"',
    "#",
    "\ufeff",
]
DEEP = b"x = " + b"[" * 1200 + b"]" * 1200
schema_bytes = st.one_of(
    st.binary(max_size=200),
    pieces(TOML_FRAGMENTS, environ=False, size=16).map(
        lambda text: text.encode("utf-8", "surrogatepass")  # a lone surrogate: not UTF-8
    ),
    st.integers(500, 2_000).map(lambda n: b"x = " + b"[" * n + b"]" * n),
)
SCHEMA_PLACES = ["file", "file", "file", "directory", "missing", "NUL in the path", "long name"]


# -- running a host --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, str]]:
    """A live OTLP receiver and Azure ingestion stub: the ports some fuzzed values name.

    The exporters are imported now rather than inside a tiny budget. An export abandoned at
    the budget goes on retrying in the background (with ``OTEL_EXPORTER_OTLP_TIMEOUT``, up
    to six times) with random jitter: those draws get a generator of their own, or
    hypothesis sees the global one move while it generates (and warns). Left in place, as
    such threads may outlive this module.
    """
    import importlib
    import random

    from opentelemetry.exporter.otlp.common import http
    from opentelemetry.exporter.otlp.proto.grpc import exporter

    importlib.import_module("phonehome._sender")
    http.random = exporter.random = random.Random()  # type: ignore[attr-defined]
    for destination in (
        phonehome.otlp("http://127.0.0.1:9"),
        phonehome.otlp("http://127.0.0.1:9", protocol="grpc"),
        phonehome.azure(f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:9"),
    ):
        for signal in ("traces", "logs", "metrics"):
            _exporters.build(destination, signal)  # type: ignore[arg-type]
    with OTLPReceiver() as otlp, AzureIngestion() as azure:
        yield {"<otlp-port>": str(otlp.port), "<azure-port>": str(azure.port)}


def fill(text: str | None, ports: dict[str, str]) -> str | None:
    if text is None:
        return None
    for placeholder, port in ports.items():
        text = text.replace(placeholder, port)
    return text


def one_command(state_dir: Path, **arguments: Any) -> tuple[bool, Exception | None, Any]:
    """Run a host's one command; whether its body ran, what escaped, the Telemetry."""
    ran = False
    telemetry = None
    try:
        with phonehome.instrument(
            "democli", state_dir=state_dir, mode="ci", ci_budget=0.2, **arguments
        ) as telemetry:
            with telemetry.command("generate"):
                ran = True
    except Exception as error:
        return ran, error, telemetry
    finally:
        with _exporters.ENVIRON_LOCK:  # an exporter still being built restores the variables
            pass
    return ran, None, telemetry


def host_problems(ran: bool, escaped: Exception | None, err: str, names: list[str]) -> list[str]:
    """What the host would notice: an exception, a body that did not run, stray stderr."""
    problems = []
    if escaped is not None:
        problems.append(f"{type(escaped).__name__} escaped into the host: {escaped}")
    if not ran:
        problems.append("the command's body did not run")
    return problems + stderr_problems(err, names)


def stderr_problems(err: str, names: list[str]) -> list[str]:
    """At most one line per fuzzed setting, each ``phonehome: `` and naming its setting."""
    lines = err.splitlines()
    problems = [
        f"not one line naming a setting: {line!r}"
        for line in lines
        if not line.startswith("phonehome: ") or not any(name in line for name in names)
    ]
    if "Traceback" in err:
        problems.append("a traceback on stderr")
    if len(lines) > len(names):
        problems.append(f"{len(lines)} lines on stderr for {len(names)} fuzzed settings")
    return problems


def silent_off(telemetry: Any, err: str) -> list[str]:
    """A setting turned telemetry off without a word (contained and counted, nothing said)."""
    if telemetry is not None and telemetry.decision.source == "error":
        return [f"telemetry is off ({telemetry.decision.detail}) and stderr says only {err!r}"]
    return []


def verdict(problems: list[str], host: list[str]) -> None:
    """Count the example and a host failure, then fail with everything that was seen."""
    ROW.cases += 1
    if host:
        ROW.host_failures += 1
    everything = host + problems
    assert not everything, "\n".join(everything)


# -- 1. vendor= and user= ----------------------------------------------------------------------
@FUZZ
@given(
    vendor=st.one_of(st.none(), destination_text(environ=False)),
    user=st.one_of(st.none(), destination_text(environ=False)),
)
@example(vendor="http://127.0.0.1:²", user=None)  # int("²") once escaped _check_url
@example(vendor=None, user=f"InstrumentationKey={KEY};IngestionEndpoint=http://[::1]:¹")
def test_any_vendor_or_user_string_is_one_warning_and_the_host_runs_on(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    lenient: None,
    receivers: dict[str, str],
    vendor: str | None,
    user: str | None,
) -> None:
    vendor, user = fill(vendor, receivers), fill(user, receivers)
    assume(loopback_destination(vendor) and loopback_destination(user))
    _diagnostics.reset()
    capsys.readouterr()
    ran, escaped, telemetry = one_command(tmp_path_factory.mktemp("s"), vendor=vendor, user=user)
    err = capsys.readouterr().err
    if telemetry is not None:
        event(f"{len(telemetry.destinations)} destination(s)")
    verdict(silent_off(telemetry, err), host_problems(ran, escaped, err, ["vendor=", "user="]))


# -- 2. the user's destination variables ---------------------------------------------------------
@FUZZ
@given(environment=environments)
@example(environment={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:²"})
def test_any_destination_variable_is_one_warning_and_never_costs_the_vendor(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    lenient: None,
    receivers: dict[str, str],
    environment: dict[str, str],
) -> None:
    environment = {k: fill(v, receivers) or "" for k, v in environment.items()}
    assume(loopback_environment(environment))
    vendor = f"http://127.0.0.1:{receivers['<otlp-port>']}"
    _diagnostics.reset()
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        ran, escaped, telemetry = one_command(tmp_path_factory.mktemp("s"), vendor=vendor)
    err = capsys.readouterr().err
    problems = silent_off(telemetry, err)
    if telemetry is not None:
        event(f"{len(telemetry.destinations)} destination(s)")
        if not any(d.startswith("vendor:") for d in telemetry.destinations):
            problems.append(f"the vendor's destination is gone: {telemetry.destinations}")
    verdict(problems, host_problems(ran, escaped, err, list(environment)))


# -- 3. phonehome.otlp() and phonehome.azure() ---------------------------------------------------
def built_or_refused(build: Callable[[], Any], secrets: list[str]) -> tuple[list[str], list[str]]:
    """A Destination described in one line without its secrets, or DestinationError with a
    one-line message; anything else escaping is a crash in the integrator's code."""
    try:
        destination = build()
    except phonehome.DestinationError as error:
        message = str(error)
        return [], [] if len(message.splitlines()) == 1 else [f"a message in lines: {message!r}"]
    except Exception as error:
        return [f"{type(error).__name__} escaped instead of DestinationError: {error}"], []
    if not isinstance(destination, phonehome.Destination):
        return [f"returned {destination!r}"], []
    described = destination.describe()
    problems = [] if len(described.splitlines()) == 1 else [f"described in lines: {described!r}"]
    shown = described.replace(destination.endpoint, "")
    problems += [f"describe() shows the secret {s!r}" for s in secrets if s in shown]
    return [], problems


@FUZZ
@given(
    endpoint=urls(environ=False),
    headers=st.one_of(
        st.none(), st.dictionaries(header_values(False), header_values(False), max_size=3)
    ),
    connection_string=connection_strings(environ=False),
)
@example(endpoint="http://127.0.0.1:²", headers=None, connection_string="")
@example(
    endpoint="",
    headers=None,
    connection_string=f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:⁹",
)
@example(endpoint="http://127.0.0.1:1", headers={"a\nb": "c"}, connection_string="")
def test_otlp_and_azure_return_a_destination_or_say_why_in_one_line(
    endpoint: str, headers: dict[str, str] | None, connection_string: str
) -> None:
    secrets = [
        value
        for value in (headers or {}).values()
        if len(value) > 8
        and value.strip()
        and not set(value) & set(",=…")
        and not any(value in name for name in headers or {})
    ]
    host, problems = built_or_refused(lambda: phonehome.otlp(endpoint, headers=headers), secrets)
    more_host, more = built_or_refused(lambda: phonehome.azure(connection_string), [KEY])
    verdict(problems + more, host + more_host)


OTHER_HOSTS = ["a.example", "evil.example", "10.0.0.1", "127.0.0.1.example"]


@FUZZ
@given(
    endpoint=joined(
        st.sampled_from(["", " ", "\t", "\n"]),
        st.sampled_from(["http://", "HTTP://", "https://"]),
        maybe(joined(st.sampled_from([*HOSTS, *OTHER_HOSTS]), st.sampled_from("@\\/?#;:%"))),
        st.sampled_from([*HOSTS, *OTHER_HOSTS]),
        st.one_of(st.sampled_from(PORTS), noise(environ=False)),
        st.sampled_from(PATHS),
    ),
    connection_string=connection_strings(environ=False),
)
@example(endpoint="http://a.example\\@127.0.0.1/", connection_string="")
@example(endpoint="http://127.0.0.1.example/", connection_string="")
@example(endpoint=" http://a.example/", connection_string="")
@example(
    endpoint="",
    connection_string=f"InstrumentationKey={KEY}; IngestionEndpoint=http://127.0.0.1:1",
)
@example(
    endpoint="",
    connection_string=f"InstrumentationKey={KEY};IngestionEndpoint=http://127.0.0.1:1;",
)
@example(endpoint="", connection_string=f"InstrumentationKey={KEY};EndpointSuffix=example.org")
def test_what_phonehome_validates_is_what_the_exporters_use(
    endpoint: str, connection_string: str
) -> None:
    """No network: phonehome's reading of a value against the clients' own parsers."""
    import urllib3

    problems = []
    vendors: list[Any] = [endpoint]  # as a string, and as a Destination
    with contextlib.suppress(ValueError):  # refused (any other ValueError is test 3's)
        vendors.append(phonehome.otlp(endpoint))
    for value in vendors:
        try:
            accepted = _destinations.resolve(value, None, environ={})
        except ValueError:
            continue
        for _role, vendor in accepted:
            url = vendor.signal_endpoint("traces").lstrip()  # what requests does first
            try:
                host = urllib3.util.parse_url(url).host
            except Exception:  # requests refuses it: nothing is sent
                continue
            if url.lower().startswith("http://") and not allowed_address(host):
                problems.append(f"{value!r}: plain http to {host!r} accepted for the vendor")
    try:
        azure = phonehome.azure(connection_string)
    except ValueError:
        pass
    else:
        used = azure_sdk_endpoint(azure.connection_string)
        if used is None:
            problems.append("accepted, but the Azure Monitor exporter refuses it")
        elif used.rstrip("/") != azure.endpoint:
            problems.append(f"validated {azure.endpoint!r}, the exporter sends to {used!r}")
    verdict(problems, [])


# -- 4. schema files ---------------------------------------------------------------------------
def schema_path(directory: Path, place: str, content: bytes) -> Path:
    if place == "directory":
        return directory
    if place == "missing":
        return directory / "missing.toml"
    if place == "NUL in the path":
        return directory / "telemetry\x00.toml"
    path = directory / ("t" * 300 + ".toml" if place == "long name" else "telemetry.toml")
    if place == "file":
        path.write_bytes(content)
    return path


@FUZZ
@given(content=schema_bytes, place=st.sampled_from(SCHEMA_PLACES))
@example(content=b"\xff", place="file")  # UnicodeDecodeError, not SchemaError
@example(content=b"commands = 1", place="file")  # AttributeError
@example(content=DEEP, place="file")  # RecursionError
@example(content=b"", place="NUL in the path")  # ValueError
def test_any_schema_file_is_one_warning_and_the_host_runs_on(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    lenient: None,
    receivers: dict[str, str],
    content: bytes,
    place: str,
) -> None:
    path = schema_path(tmp_path_factory.mktemp("schema"), place, content)
    vendor = f"http://127.0.0.1:{receivers['<otlp-port>']}"
    _diagnostics.reset()
    capsys.readouterr()
    ran, escaped, telemetry = one_command(tmp_path_factory.mktemp("s"), vendor=vendor, schema=path)
    err = capsys.readouterr().err
    problems = silent_off(telemetry, err)
    try:
        phonehome.Schema.from_toml(path)
    except (phonehome.SchemaError, OSError):
        pass
    except Exception as error:
        problems.append(f"Schema.from_toml raised {type(error).__name__}: {error}")
    if telemetry is not None:
        event(f"telemetry {telemetry.decision.source}")
    verdict(problems, host_problems(ran, escaped, err, ["schema="]))


@FUZZ
@given(content=schema_bytes)
@example(content=b'[attributes.a]\npolicy = "enum"\nvalues = [1, "a"]')  # TypeError in doc()
def test_schema_doc_on_any_file_is_a_page_or_an_error_line(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    import contextlib
    import io

    from phonehome._tools.cli import main

    path = schema_path(tmp_path_factory.mktemp("schema"), "file", content)
    problems = []
    for action in ("doc", "check"):
        errors = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(errors):
                code = main(["schema", action, str(path)])
        except Exception as error:
            problems.append(f"{action}: {type(error).__name__}: {error}")
            continue
        lines = errors.getvalue().splitlines()
        if (code, len(lines)) not in ((0, 0), (1, 1)):
            problems.append(f"{action}: exit code {code}: {lines!r}")
    verdict([], problems)


# -- 5. real hosts -----------------------------------------------------------------------------
HOST = """
import phonehome
with phonehome.instrument("democli", vendor=VENDOR, user=USER, state_dir=STATE, mode="ci",
                          ci_budget=0.2) as telemetry:
    with telemetry.command("generate"):
        print("host output")
print("host done")
"""


@HOSTS_FUZZ
@given(
    environment=environments,
    vendor=st.one_of(st.none(), destination_text(environ=False)),
    user=st.one_of(st.none(), destination_text(environ=False)),
)
def test_a_real_host_with_fuzzed_settings_prints_and_exits_as_without_them(
    tmp_path_factory: pytest.TempPathFactory,
    receivers: dict[str, str],
    environment: dict[str, str],
    vendor: str | None,
    user: str | None,
) -> None:
    environment = {k: fill(v, receivers) or "" for k, v in environment.items()}
    vendor, user = fill(vendor, receivers), fill(user, receivers)
    assume(loopback_environment(environment))
    assume(loopback_destination(vendor) and loopback_destination(user))
    state = str(tmp_path_factory.mktemp("s"))
    code = GUARD + f"VENDOR, USER, STATE = {vendor!r}, {user!r}, {state!r}\n" + HOST
    result = run_python(code, clean_environ(**environment))
    problems = []
    if result.returncode != 0:
        problems.append(f"exit code {result.returncode}")
    if result.stdout != "host output\nhost done\n":
        problems.append(f"stdout {result.stdout!r}")
    problems += stderr_problems(result.stderr, [*environment, "vendor=", "user="])
    verdict([], problems)
