"""Every channel an instrumented program has, times every kind of personal data or secret
phonehome promises to keep from the vendor, searched for in the raw bytes the vendor received.

Each example of the property draws fresh random markers: one host program pushes a value of
every kind through every channel (each pair with its own marker), in CI mode, to a vendor on
OTLP/HTTP, OTLP/gRPC or Azure Monitor; then every request the vendor got (bodies decoded,
headers included, percent-decoded and NFKC-folded so that no encoding hides a marker) is
searched for every marker. A leak names its channel and kind. Control values (declared,
harmless) must arrive intact: scrubbing may not eat what the schema declares.
"""

from __future__ import annotations

import json
import random
import string
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome.testing import AzureIngestion, OTLPGrpcReceiver, OTLPReceiver
from tests.conftest import ROOT, clean_environ, silent_server
from tests.figures import FULL

LETTERS = string.ascii_lowercase


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        value = digit * 2 if index % 2 == 0 else digit
        total += value - 9 if value > 9 else value
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def kinds(rng: random.Random) -> dict[str, tuple[str, str]]:
    """Each kind: (the value to push through a channel, the needle that must not arrive).
    The needle is random, so that nothing else can produce it."""

    def word(n: int = 12) -> str:
        return "".join(rng.choice(LETTERS) for _ in range(n))

    def alnum(n: int) -> str:
        return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))

    ipv4 = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
    ipv6 = ":".join(f"{rng.randrange(0x1000, 0xFFFF):x}" for _ in range(8))
    card = _luhn_card(rng)
    ssn = f"{rng.randrange(100, 899)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"
    phone = f"{rng.randrange(200, 999)} {rng.randrange(1000, 9999)}"
    kinds = {
        "email": (f"mail {(m := word())}@example.com now", m),
        "email, percent-encoded": (f"mail {(m := word())}%40example.com", m),
        "email, full-width": (_fullwidth(f"{(m := word())}@example.com"), _fullwidth(m)),
        "ipv4": (f"from {ipv4}.", ipv4),
        "ipv6": (f"peer:{ipv6} up", ipv6),
        "url credentials": (f"https://bob:{(m := word())}@git.example.com/r", m),
        "url, empty user": (f"postgres://:{(m := word())}@db.internal/app", m),
        "bearer": (f"Authorization: Bearer {(m := word())}xyz", m),
        "password pair": (f"DB_PASSWORD={(m := word())}", m),
        "json secret": (f'{{"access_token": "{(m := word())}"}}', m),
        "query signature": (f"https://b.example.com/o?X-Amz-Signature={(m := word())}&x=1", m),
        "github token": (f"token ghp_{(m := alnum(36))}", m),
        "aws key": (f"key AKIA{(m := alnum(16).upper())}", m),
        "private key": (
            f"-----BEGIN RSA PRIVATE KEY-----\n{(m := word())}\n-----END RSA PRIVATE KEY-----",
            m,
        ),
        "pgp key": (
            f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{(m := word())}\n"
            "-----END PGP PRIVATE KEY BLOCK-----",
            m,
        ),
        "azure key": (f"AccountName=a;AccountKey={(m := word())}==;", m),
        "card": (f"card {card} charged", card),
        "ssn": (f"ssn {ssn} on file", ssn),
        "phone": (f"call +1 555 {phone} now", phone),
        "another user's home": (f"/home/{(m := word())}/notes.txt", m),
    }
    return kinds


CHANNELS = (
    "command param value",
    "declared param value",
    "param name",
    "command name",
    "span name",
    "span attribute",
    "undeclared command attribute",
    "span event",
    "event attribute",
    "event name",
    "metric name",
    "metric description",
    "metric attribute",
    "log message",
    "logger name",
    "exception message",
    "exception type",
    "chained exception",
    "exit message",
    "collector snapshot",
)
"""The channels driven inside the program; the environment's channels (resource variables,
the user's headers, ~/.netrc, Entra ID) are added per run below."""

HOST = r"""
import json, logging, sys, phonehome
plan = json.load(open(sys.argv[2]))
schema = phonehome.Schema(
    commands={"declared": {"value": phonehome.field("string", policy="raw")}},
    events={"known": {"note": phonehome.field("string")},
            "snapshot": {"note": phonehome.field("string")}},
    attributes={"detail": phonehome.field("string"), "control": phonehome.field("string")},
)
log = logging.getLogger("host")
with phonehome.instrument("democli", vendor=sys.argv[1], schema=schema, mode="ci",
                          ci_budget=20, state_dir=sys.argv[3]) as t:
    @t.collector("snapshot", every=1)
    def snapshot():
        return {"note": plan["collector snapshot"][0][1]}

    for channel, pairs in plan.items():
        for kind, value in pairs if channel != "controls" else ():
            try:
                if channel == "command param value":
                    with t.command("run", params={"target": value}, collect={"target"}):
                        pass
                elif channel == "declared param value":
                    with t.command("declared", params={"value": value}):
                        pass
                elif channel == "param name":
                    with t.command("run", params={value: 1}, collect={value}):
                        pass
                elif channel == "command name":
                    with t.command(value):
                        pass
                elif channel == "span name":
                    with t.command("run"), t.span(value):
                        pass
                elif channel == "span attribute":
                    with t.command("run"), t.span("work", {"detail": value}):
                        pass
                elif channel == "undeclared command attribute":
                    with t.command("never-declared") as span:
                        span.set_attribute("anything", value)
                elif channel == "span event":
                    with t.command("run"), t.span("work") as span:
                        span.add_event(value, {"detail": value})
                elif channel == "event attribute":
                    t.event("known", {"note": value})
                elif channel == "event name":
                    t.event(value, {"note": "x"})
                elif channel == "metric name":
                    t.counter("n." + value).add(1)
                elif channel == "metric description":
                    t.counter("described", unit=value[:20], description=value).add(1)
                elif channel == "metric attribute":
                    t.counter("runs").add(1, {"detail": value})
                elif channel == "log message":
                    log.error("failed: %s", value)
                    log.warning(f"formatted {value}")
                elif channel == "logger name":
                    logging.getLogger(value).error("plain text")
                elif channel == "exception message":
                    with t.command("run"):
                        raise RuntimeError(value)
                elif channel == "exception type":
                    error = type("Error", (Exception,), {"__module__": "pkg." + value})
                    with t.command("run"):
                        raise error("x")
                elif channel == "chained exception":
                    with t.command("run"):
                        try:
                            raise KeyError(value)
                        except KeyError as cause:
                            raise ValueError("wrapped") from cause
                elif channel == "exit message":
                    with t.command("run"):
                        sys.exit(value)
            except BaseException:
                pass
    for control in plan["controls"]:
        with t.command("run"), t.span("work", {"control": control}):
            pass
print("done")
"""


def _plan(rng: random.Random) -> tuple[dict[str, Any], dict[tuple[str, str], str], list[str]]:
    plan: dict[str, Any] = {}
    needles: dict[tuple[str, str], str] = {}
    for channel in CHANNELS:
        plan[channel] = []
        for kind, (value, needle) in kinds(rng).items():
            plan[channel].append((kind, value))
            needles[(channel, kind)] = needle
    controls = ["control" + "".join(rng.choice(LETTERS) for _ in range(10)) for _ in range(3)]
    plan["controls"] = controls
    return plan, needles, controls


def _environment(
    rng: random.Random, home: Path
) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """The user's environment and files, each carrying a marker of its own."""
    marks = {name: "".join(rng.choice(LETTERS) for _ in range(14)) for name in range(8)}
    home.mkdir(parents=True, exist_ok=True)
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {marks[0]} password {marks[1]}\n")
    netrc.chmod(0o600)
    environ = {
        "HOME": str(home),
        "USER": marks[2],
        "OTEL_RESOURCE_ATTRIBUTES": f"deployment.owner={marks[3]},device.id={marks[4]}",
        "OTEL_SERVICE_NAME": f"svc{marks[5]}",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={marks[6]}",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"Authorization=AAD;ClientId={marks[7]}",
    }
    needles = {
        ("~/.netrc", "login"): marks[0],
        ("~/.netrc", "password"): marks[1],
        ("user name", "USER"): marks[2],
        ("resource variable", "OTEL_RESOURCE_ATTRIBUTES"): marks[3],
        ("resource variable", "device.id override"): marks[4],
        ("resource variable", "OTEL_SERVICE_NAME"): marks[5],
        ("user's headers", "OTEL_EXPORTER_OTLP_HEADERS"): marks[6],
        ("Entra ID", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"): marks[7],
    }
    return environ, needles


def _seen(receiver: Any) -> str:
    """Everything the vendor received, as text an encoding cannot hide a marker in."""
    parts: list[str] = []
    for body in getattr(receiver, "bodies", []):
        parts.append(body.decode("utf-8", "replace"))
    for _, headers in receiver.requests:
        parts.append(json.dumps(headers, default=str))
        for value in headers.values():  # credentials hide in base64: Basic dXNlcjpwYXNz
            for token in str(value).split():
                parts.append(_base64(token))
    text = "\n".join(parts)
    return unicodedata.normalize("NFKC", unquote(unquote(text)))


def _base64(token: str) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return ""


RECEIVERS = {
    "otlp/http": OTLPReceiver,
    "otlp/grpc": OTLPGrpcReceiver,
    "azure": AzureIngestion,
}


def _vendor(kind: str, receiver: Any) -> str:
    return receiver.connection_string if kind == "azure" else receiver.url


@pytest.mark.parametrize("protocol", list(RECEIVERS))
@settings(max_examples=5 if FULL else 1, deadline=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_nothing_personal_reaches_the_vendor_through_any_channel(
    protocol: str, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(seed)
    work = tmp_path_factory.mktemp("run")
    plan, needles, controls = _plan(rng)
    environ, environment_needles = _environment(rng, work / "home")
    needles.update(environment_needles)
    (work / "plan.json").write_text(json.dumps(plan))
    host = HOST
    if protocol == "otlp/grpc":
        host = host.replace(
            "vendor=sys.argv[1]", "vendor=phonehome.otlp(sys.argv[1], protocol='grpc')"
        )
    msi, msi_port = silent_server()  # where a managed-identity token would be fetched from
    try:
        environ["IDENTITY_ENDPOINT"] = f"http://127.0.0.1:{msi_port}/token"
        environ["IDENTITY_HEADER"] = "phonehome-test"
        with RECEIVERS[protocol]() as receiver:
            run = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    host,
                    _vendor(protocol, receiver),
                    str(work / "plan.json"),
                    str(work / "state"),
                ],
                env=clean_environ(**environ),
                capture_output=True,
                text=True,
                timeout=240,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
            assert run.returncode == 0 and "done" in run.stdout, run.stderr[-3000:]
            seen = _seen(receiver)
        msi.settimeout(0)
        with pytest.raises(BlockingIOError):
            msi.accept()  # nobody asked for the user's managed-identity token
    finally:
        msi.close()
    assert len(seen) > 1000, "the vendor received almost nothing: the property would be vacuous"
    leaks = sorted(f"{c} / {k}" for (c, k), needle in needles.items() if needle in seen)
    assert leaks == []
    assert [c for c in controls if c not in seen] == [], "declared values must arrive intact"
