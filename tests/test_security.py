"""Security: a run touches nothing outside its state directory, TLS is verified by default,
records a destination refused wait in the spool. Real hosts and senders on 127.0.0.1."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from phonehome._spool.clock import BOOT_ID_FILE
from phonehome.testing import AzureIngestion, OTLPReceiver
from phonehome.testing._server import LoopbackServer
from tests import figures
from tests.conftest import ROOT, app_logs, backoff_over, clean_environ, run_python
from tests.test_delivery import wait_no_sender

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""Where requests (OTLP/HTTP, Azure) and OpenSSL look for extra trusted certificates.
``clean_environ`` keeps them (they are not telemetry settings), so a test that proves the
default trust removes them."""

AUDIT_LOG = "SECURITY_AUDIT_LOG"

PROBE = '''
"""Test probe: records this process's file, process and network audit events."""
import os
import sys

_directory = os.environ.get("SECURITY_AUDIT_LOG")
if _directory:
    import json

    # Opened before the hook is installed and written with os.write (which raises no audit
    # event): the probe's own log never shows up in what it records.
    _fd = os.open(
        os.path.join(_directory, f"{os.getpid()}.jsonl"),
        os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        0o600,
    )
    _EVENTS = frozenset((
        "open", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown",
        "os.symlink", "os.link", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile",
        "tempfile.mkstemp", "tempfile.mkdtemp", "os.listdir", "os.scandir", "glob.glob",
        "os.posix_spawn", "os.exec", "os.system", "subprocess.Popen",
        "socket.connect", "socket.getaddrinfo",
    ))

    def _plain(value):
        if value is None or isinstance(value, (str, int, float)):
            return value
        if isinstance(value, bytes):
            return os.fsdecode(value)
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (list, tuple)):
            return [_plain(v) for v in value]
        if isinstance(value, dict):  # a spawned process's environment: what the test needs
            return {k: value.get(k) for k in ("PYTHONPATH", "SECURITY_AUDIT_LOG")}
        return repr(value)

    def _emit(entry):
        os.write(_fd, (json.dumps(entry) + "\\n").encode())

    _emit(["process", [os.getpid(), list(sys.orig_argv), os.getcwd()]])

    def _hook(event, args):
        if event in _EVENTS:
            try:
                _emit([event, [_plain(a) for a in args]])
            except Exception:
                pass

    sys.addaudithook(_hook)
'''

AUDITED_HOST = """
import logging, sys
import phonehome

logging.basicConfig(format="%(message)s")  # the host's own logging set-up
schema = phonehome.Schema(
    events={"purchase_completed": {"amount": phonehome.field("float", "Order total")}}
)
with phonehome.instrument("democli", version="1.0", vendor=sys.argv[1], state_dir=sys.argv[2],
                          schema=schema, mode="cli", sender_lifetime=10) as t:
    with t.command("generate"):
        pass
    t.event("purchase_completed", {"amount": 9.5})
    logging.getLogger("democli").warning("disk almost full")
with open(sys.argv[3], "w") as output:  # the host's own file, outside the state directory
    output.write("generated\\n")
print("generated")
"""

TLS_HOST = """
import sys, phonehome
vendor = sys.argv[1] or None
if vendor and len(sys.argv) > 3:
    vendor = phonehome.otlp(vendor, certificate_file=sys.argv[3])
with phonehome.instrument("democli", version="1.0", vendor=vendor, state_dir=sys.argv[2],
                          mode="ci", ci_budget=4.0) as t:
    with t.command("generate"):
        pass
print("generated")
"""

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITES = frozenset((
    "os.remove", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
    "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp",
))  # fmt: skip
_DIR_FD_LAST = frozenset(("os.remove", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.utime"))
_LISTINGS = frozenset(("os.listdir", "os.scandir", "glob.glob"))
_SPAWNS = frozenset(("os.posix_spawn", "os.exec", "os.system", "subprocess.Popen"))


def default_trust(**extra: str) -> dict[str, str]:
    """A clean environment that trusts only the default CA store (certifi, for requests)."""
    environ = clean_environ(**extra)
    for name in CA_VARIABLES:
        if name not in extra:
            environ.pop(name, None)
    return environ


def run(argv: list[str], environ: dict[str, str], cwd: Path = ROOT) -> tuple[int, str, str]:
    """Run a host program as a user would; its exit code and output."""
    result = subprocess.run(
        [sys.executable, *argv],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )
    return result.returncode, result.stdout, result.stderr


def unchanged(result: tuple[int, str, str], baseline: tuple[int, str, str]) -> bool:
    """Whether the host ran as it does with telemetry off; counted in the figures."""
    row = figures.row("security")
    row.cases += 1
    row.host_failures += result != baseline
    return result == baseline and "Traceback" not in result[2]


# -- nothing outside the state directory ----------------------------------------------------


@dataclass
class Process:
    """One audited interpreter: the host, or the sender it started."""

    pid: int
    argv: list[str]
    cwd: str
    events: list[tuple[str, list[Any]]]

    @property
    def role(self) -> str:
        return "sender" if any("phonehome._sender" in a for a in self.argv) else "host"

    def path(self, value: str) -> Path:
        return Path(os.path.realpath(os.path.join(self.cwd, value)))


def audited(directory: Path) -> list[Process]:
    processes = []
    for log in sorted(directory.glob("*.jsonl")):
        lines = [json.loads(line) for line in log.read_text().split("\n") if line]
        (kind, (pid, argv, cwd)), *events = lines
        assert kind == "process"
        processes.append(Process(pid, argv, cwd, [(e, a) for e, a in events]))
    return processes


def accesses(process: Process) -> list[tuple[str, str, Path]]:
    """(``read``, ``write`` or ``list``, the event, the resolved path) of every path access.

    Accesses through a descriptor (an ``open`` of an ``int``, ``os.scandir(fd)``) are left
    out: the path that descriptor came from was recorded when it was opened.
    """
    found: list[tuple[str, str, Path]] = []
    for event, args in process.events:
        targets: list[tuple[str, Any]] = []
        if event == "open":
            path, mode, flags = args
            writes = (mode is not None and any(c in mode for c in "wax+")) or flags & _WRITE_FLAGS
            targets = [("write" if writes else "read", path)]
        elif event in _LISTINGS:
            targets = [("list", args[0] if args[0] is not None else ".")]
        elif event == "os.rename":  # also os.replace
            targets = [("write", args[0]), ("write", args[1])]
        elif event in ("os.symlink", "os.link", "shutil.copyfile"):
            targets = [("read", args[0]), ("write", args[1])]
        elif event in _WRITES:
            targets = [("write", args[0])]
            relative_to_fd = event in _DIR_FD_LAST and args[-1] not in (None, -1)
            if relative_to_fd and isinstance(args[0], str) and not os.path.isabs(args[0]):
                targets = [("write", f"<relative to descriptor {args[-1]}>/{args[0]}")]
        for how, path in targets:
            if isinstance(path, str):
                found.append((how, event, process.path(path)))
    return found


def inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


PYTHON = [
    Path(os.path.realpath(p))
    for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
]
"""The Python installation: the venv (site-packages) and the interpreter's stdlib."""


def file_offences(
    process: Process, state: Path, readable: list[Path], except_for: Path
) -> list[str]:
    """Writes outside the state directory; reads outside it and ``readable``."""
    state = Path(os.path.realpath(state))
    own = Path("/proc") / str(process.pid)
    found = []
    for how, event, path in accesses(process):
        if path == except_for:
            continue
        if how == "write":
            allowed = inside(path, [state]) or path == Path(os.devnull)
        elif how == "read":
            allowed = (
                inside(path, readable)
                or path == Path(os.devnull)
                # psutil reads system CPU times on import (opentelemetry.sdk.resources
                # imports it when installed) and its own process's figures (the Azure
                # exporter's performance counters)
                or path == Path("/proc/stat")
                # the boot's id: the spool dates what it keeps on the boot clock too
                # (phonehome._spool.clock), safe from wall-clock jumps
                or path == Path(BOOT_ID_FILE)
                or own in path.parents
            )
        else:  # names only, never contents: the import system lists each sys.path entry,
            # and `python -m` (the sender) puts its working directory first on it
            allowed = inside(path, readable) or path == Path(process.cwd)
        if not allowed:
            found.append(f"{process.role} {how} ({event}) {path}")
    return found


def other_offences(process: Process, destinations: set[tuple[str, int]]) -> list[str]:
    """Connections to anything but the destinations; processes other than the expected."""
    found = []
    for event, args in process.events:
        if event == "socket.connect":
            if tuple(args[1][:2]) not in destinations:
                found.append(f"{process.role} connect {args[1]}")
        elif event == "socket.getaddrinfo" and args[0] != "127.0.0.1":
            found.append(f"{process.role} name lookup {args[0]}")
        elif event in _SPAWNS and not (
            (process.role == "host" and args[1][1] == "-c" and "phonehome._sender" in args[1][2])
            # platform.processor(), called by azure-identity's user agent at import
            or (process.role == "sender" and args[1] == ["uname", "-p"])
        ):
            found.append(f"{process.role} spawn {args[:2]}")
    return found


def test_a_run_and_its_sender_read_and_write_nothing_outside_the_state_directory(
    tmp_path: Path,
) -> None:
    """Every file the host and its detached sender write, rename, remove or chmod is in the
    state directory; every file they read is there or in the Python installation."""
    tmp_path = Path(os.path.realpath(tmp_path))
    probe, audit, program, work = (tmp_path / d for d in ("probe", "audit", "bin", "work"))
    for directory in (probe, audit, program, work):
        directory.mkdir()
    (probe / "sitecustomize.py").write_text(PROBE)
    (program / "democli").write_text(AUDITED_HOST)
    (work / "notes.txt").write_text("the user's own file: nothing of ours reads it\n")
    state, own_file = tmp_path / "state", tmp_path / "host-output.txt"

    def host(vendor: str, state: Path, **environ: str) -> tuple[int, str, str]:
        argv = [str(program / "democli"), vendor, str(state), str(own_file)]
        return run(argv, default_trust(**environ), cwd=work)

    baseline = host("http://127.0.0.1:9", tmp_path / "off", DEMOCLI_TELEMETRY_OPTOUT="1")
    with OTLPReceiver() as vendor, AzureIngestion() as user:
        result = host(
            vendor.url,
            state,
            PYTHONPATH=str(probe),
            APPLICATIONINSIGHTS_CONNECTION_STRING=user.connection_string,
            **{AUDIT_LOG: str(audit)},
        )
        assert unchanged(result, baseline), (result, baseline)
        assert vendor.wait_until(lambda: vendor.spans and len(app_logs(vendor)) == 2, 20)
        assert user.wait_until(lambda: user.of_type("RemoteDependencyData"), timeout=20)
        wait_no_sender(state)
        destinations = {("127.0.0.1", vendor.port), ("127.0.0.1", user.port)}
    assert [s.name for s in vendor.spans] == ["generate"]

    found = audited(audit)
    assert sorted(p.role for p in found) == ["host", "sender"], [p.argv for p in found]
    processes = {p.role: p for p in found}
    host_process, sender = processes["host"], processes["sender"]
    (spawn,) = [a for e, a in host_process.events if e == "os.posix_spawn"]
    assert spawn[1][1] == "-c" and "phonehome._sender" in spawn[1][2]
    assert spawn[1][3] == str(state)
    assert str(probe) in spawn[2]["PYTHONPATH"].split(os.pathsep)  # the sender inherits it
    # the probe sees the host's own write, and the sender reading the spool
    assert ("write", "open", own_file) in accesses(host_process)
    assert any(how == "read" and p.suffix == ".seg" for how, _, p in accesses(sender))

    readable = [Path(os.path.realpath(state)), *PYTHON, ROOT / "src", probe, program]
    # and the check flags that write when it is not the one excepted
    assert file_offences(host_process, state, readable, except_for=state) == [
        f"host write (open) {own_file}"
    ]
    offending = [
        problem
        for process in processes.values()
        for problem in file_offences(process, state, readable, except_for=own_file)
        + other_offences(process, destinations)
    ]
    assert offending == [], "\n".join(offending)


def test_the_sender_does_not_import_modules_from_the_users_working_directory(
    otlp_receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """A program run inside an untrusted checkout must not run the checkout's code through
    its telemetry sender (the host itself, an installed script, never imports from there)."""
    program, work, state = tmp_path / "bin", tmp_path / "checkout", tmp_path / "state"
    program.mkdir()
    work.mkdir()
    (program / "democli").write_text(TLS_HOST.replace('mode="ci"', 'mode="cli"'))
    marker = tmp_path / "imported"
    (work / "requests.py").write_text(  # shadows a module the sender imports
        f"open({str(marker)!r}, 'a').write(__name__)\nraise ImportError('not the real one')\n"
    )
    result = run([str(program / "democli"), otlp_receiver.url, str(state)], default_trust(), work)
    assert result == (0, "generated\n", "")
    wait_no_sender(state)
    assert not marker.exists(), marker.read_text()
    assert otlp_receiver.wait_until(lambda: otlp_receiver.spans, timeout=20)


# -- TLS --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trust:
    ca_file: Path
    """The test CA's certificate (PEM); nothing trusts it unless told to."""
    server: ssl.SSLContext
    """A server context with a certificate for 127.0.0.1 issued by that CA."""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return Trust(ca_file, server)


def over_tls(server: LoopbackServer, context: ssl.SSLContext) -> list[str]:
    """Make ``server`` (not started yet) answer HTTPS only; the list fills with the reason
    of every handshake that failed (``TLSV1_ALERT_UNKNOWN_CA``: the client refused us)."""
    refused: list[str] = []
    httpd = server._httpd
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    accept = httpd.get_request

    def get_request() -> Any:
        try:
            return accept()  # the handshake happens here
        except ssl.SSLError as error:
            refused.append(str(error.reason))
            raise

    httpd.get_request = get_request  # type: ignore[method-assign]
    return refused


def https(server: LoopbackServer) -> str:
    return f"https://127.0.0.1:{server.port}"


def segments(state: Path) -> list[Path]:
    return list((state / "spool").glob("*.seg"))


@pytest.fixture(scope="module")
def tls_baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    """The TLS host's exit code and output with telemetry off."""
    state = tmp_path_factory.mktemp("off")
    return run(
        ["-c", TLS_HOST, "https://127.0.0.1:9", str(state)],
        default_trust(DEMOCLI_TELEMETRY_OPTOUT="1"),
    )


def test_an_untrusted_https_vendor_gets_nothing_and_the_records_wait_in_the_spool(
    tls: Trust, tls_baseline: tuple[int, str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    vendor = OTLPReceiver()
    refused = over_tls(vendor, tls.server)
    with vendor:
        result = run(["-c", TLS_HOST, https(vendor), str(state)], default_trust())
        assert unchanged(result, tls_baseline), result
        assert vendor.wait_until(lambda: bool(refused), timeout=10)
        assert "TLSV1_ALERT_UNKNOWN_CA" in refused, refused
        assert vendor.requests == []
        assert len(segments(state)) == 1  # kept for a later delivery, not deleted

        # the same records go out once the CA is trusted (requests' standard variable), by
        # a flush (a sender started by a run would wait out the failed vendor's backoff)
        later = run_python(
            "from pathlib import Path; from phonehome._sender import deliver as _sender; "
            f"print(_sender.deliver(Path({str(state)!r}), 10, retry_now=True).failed)",
            default_trust(REQUESTS_CA_BUNDLE=str(tls.ca_file)),
        )
        assert later.stdout == "{}\n", later.stderr
        assert [s.name for s in vendor.spans] == ["generate"]
        assert segments(state) == []

        # and an integrator who pins the CA with certificate_file= delivers at once
        pinned = tmp_path / "pinned"
        argv = ["-c", TLS_HOST, https(vendor), str(pinned), str(tls.ca_file)]
        assert unchanged(run(argv, default_trust()), tls_baseline)
        assert vendor.wait_until(lambda: len(vendor.spans) == 2, timeout=10)
        assert segments(pinned) == []


def test_the_users_https_endpoint_is_verified_and_their_certificate_variable_trusts_it(
    tls: Trust, tls_baseline: tuple[int, str, str], tmp_path: Path
) -> None:
    user, vendor = OTLPReceiver(), OTLPReceiver()
    refused, vendor_refused = over_tls(user, tls.server), over_tls(vendor, tls.server)
    with user, vendor:
        endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": https(user)}
        untrusted = tmp_path / "untrusted"
        result = run(["-c", TLS_HOST, "", str(untrusted)], default_trust(**endpoint))
        assert unchanged(result, tls_baseline), result
        assert user.wait_until(lambda: bool(refused), timeout=10)
        assert "TLSV1_ALERT_UNKNOWN_CA" in refused, refused
        assert user.requests == []
        assert len(segments(untrusted)) == 1

        # the user's certificate is trusted for the user's endpoint, and only there
        trusted = tmp_path / "trusted"
        environ = default_trust(**endpoint, OTEL_EXPORTER_OTLP_CERTIFICATE=str(tls.ca_file))
        result = run(["-c", TLS_HOST, https(vendor), str(trusted)], environ)
        assert unchanged(result, tls_baseline), result
        assert user.wait_until(lambda: user.spans, timeout=10)
        assert [s.name for s in user.spans] == ["generate"]
        assert vendor.wait_until(lambda: bool(vendor_refused), timeout=10)
        assert "TLSV1_ALERT_UNKNOWN_CA" in vendor_refused, vendor_refused
        assert vendor.requests == []
        assert len(segments(trusted)) == 1  # held for the vendor, delivered to the user


def test_an_untrusted_https_azure_endpoint_gets_nothing_and_the_records_wait_in_the_spool(
    tls: Trust, tls_baseline: tuple[int, str, str], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    ingestion = AzureIngestion()
    refused = over_tls(ingestion, tls.server)
    with ingestion:
        vendor = (
            f"InstrumentationKey={ingestion.instrumentation_key};"
            f"IngestionEndpoint={https(ingestion)}/"
        )
        result = run(["-c", TLS_HOST, vendor, str(state)], default_trust())
        assert unchanged(result, tls_baseline), result
        assert ingestion.wait_until(lambda: bool(refused), timeout=10)
        assert "TLSV1_ALERT_UNKNOWN_CA" in refused, refused
        assert ingestion.requests == []
        assert len(segments(state)) == 1

        # trusted (azure-core's requests transport reads REQUESTS_CA_BUNDLE): the next run
        # after the failed vendor's backoff delivers what the first one held, and its own
        assert backoff_over(state) == 1
        environ = default_trust(REQUESTS_CA_BUNDLE=str(tls.ca_file))
        assert unchanged(run(["-c", TLS_HOST, vendor, str(state)], environ), tls_baseline)
        names = lambda: [d["name"] for d in ingestion.of_type("RemoteDependencyData")]  # noqa: E731
        assert ingestion.wait_until(lambda: len(names()) == 2, timeout=10)
        assert names() == ["generate", "generate"]
        assert segments(state) == []
