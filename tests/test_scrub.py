"""Scrubbing: each kind of personal data or secret, and a property test on the wire."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phonehome

# Imported here, not first inside a hypothesis example: CPython 3.11 before 3.11.8 can fail to
# compile a module from source there ("AST constructor recursion depth mismatch",
# gh-106905), since hypothesis changes the recursion limit; in-process delivery imports it.
import phonehome._sender.replay
from phonehome import Schema, field
from phonehome._host.exceptions import relative_path
from phonehome._policy.scrub import MAX_TEXT, Scrubber
from phonehome.testing import OTLPReceiver

HOME, USER = "/home/alice", "alice"


def _fullwidth(text: str) -> str:
    """``text`` in full-width forms (U+FF01..U+FF5E), as some keyboards and pastes give it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# (text containing it, the secret part that must not survive, the marker that replaces it)
CORPUS = [
    ("/home/alice/projects/acme/spec.yaml", "/home/alice", "~/projects/acme/spec.yaml"),
    ("owner: alice", "alice", "<user>"),
    ("mail alice.smith@example.com now", "alice.smith@example.com", "<email>"),
    ("from 192.168.10.42 port 80", "192.168.10.42", "<ip>"),
    ("peer 2001:db8::8a2e:370:7334 up", "2001:db8::8a2e:370:7334", "<ip>"),
    ("https://bob:hunter2@git.example.com/r", "hunter2", "<credentials>@"),
    ("https://x.io/cb?code=abc123xyz&state=1", "abc123xyz", "<redacted>"),
    (
        "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        "<jwt>",
    ),
    (
        "token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "<token>",
    ),
    ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl", "<token>"),
    (
        "key AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "AIzaSyA1234567890abcdefghijklmnopqrstuv",
        "<token>",
    ),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "<token>"),
    (
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFyYmF6cXV4==;",
        "Zm9vYmFyYmF6cXV4==",
        "AccountKey=<redacted>",
    ),
    (
        "https://acct.blob.core.windows.net/c?sv=2020&sig=AbCdEf%2B123",
        "AbCdEf%2B123",
        "sig=<redacted>",
    ),
    ("login password=Tr0ub4dor&3 ok", "Tr0ub4dor", "password=<redacted>"),
    ('config {"api_key": "k-9876543210"}', "k-9876543210", "<redacted>"),
    ("card 4111 1111 1111 1111 charged", "4111 1111 1111 1111", "<card>"),
    ("Authorization: Bearer abc.def-ghi_jkl123", "abc.def-ghi_jkl123", "Bearer <redacted>"),
    # normalised before matching: percent-encoded, full-width, case
    ("mail alice.smith%40example.com now", "alice.smith", "<email>"),
    ("open %2Fhome%2Falice%2Fnotes.txt", "alice", "~/notes.txt"),
    (_fullwidth("alice.smith@example.com"), _fullwidth("smith"), "<email>"),
    # addresses next to punctuation
    ("reached 10.20.30.40.", "10.20.30.40", "<ip>."),
    ("peer:10.20.30.40 up", "10.20.30.40", "peer:<ip>"),
    ("addr:fe80::1ff:fe23:4567:890a", "fe80::1ff:fe23:4567:890a", "addr:<ip>"),
    # secret-bearing keys in any case, inside longer names, in JSON
    ("export DB_PASSWORD=Tr0ub4dor", "Tr0ub4dor", "DB_PASSWORD=<redacted>"),
    ("api_token=tok-12345 next", "tok-12345", "api_token=<redacted>"),
    ("x: api_token=tok-12345 next", "tok-12345", "api_token=<redacted>"),  # found by hypothesis
    ('{"access_token": "ya29.a0AfH6SM"}', "ya29.a0AfH6SM", '"access_token": "<redacted>"'),
    ("SecretAccessKey=wJalrXUtnFEMIK7MDENG", "wJalrXUtnFEMIK7MDENG", "SecretAccessKey=<redacted>"),
    ("db_password = 'two words'", "two words", '"<redacted>"'),
    # signatures in query strings, an empty user in a URL, PGP keys
    (
        "https://b.s3.amazonaws.com/o?X-Amz-Signature=f00dfeed&X-Amz-Date=1",
        "f00dfeed",
        "<redacted>",
    ),
    ("postgres://:s3cretpw@db.internal:5432/app", "s3cretpw", "<credentials>@"),
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBF0",
        "<private-key>",
    ),
    # more kinds
    ("ssn 123-45-6789 on file", "123-45-6789", "<ssn>"),
    ("iban DE89 3704 0044 0532 0130 00 paid", "3704 0044 0532", "<iban>"),
    ("call +1 (555) 123-4567 today", "123-4567", "<phone>"),
    ("nic 00:1A:2B:3C:4D:5E up", "00:1A:2B:3C:4D:5E", "<mac>"),
    ("from /Users/bob/work/a.txt", "bob", "/Users/<user>/work"),
    ("key sk-ant-api03-abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuv", "<token>"),
    ("oauth ya29.a0AfH6SMBx3abcdefghijklmnop", "a0AfH6SMBx3abcdefghijklmnop", "<token>"),
    (
        "hook https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX now",
        "XXXXsecretXXXX",
        "services/<redacted>",
    ),
    ("vault hvs.CAESIJabcdefghijklmnopqrstu", "CAESIJabcdefghijklmnopqrstu", "<token>"),
]


@pytest.mark.parametrize(("text", "secret", "marker"), CORPUS)
def test_each_kind_is_scrubbed(text: str, secret: str, marker: str) -> None:
    scrubbed = Scrubber(home=HOME, user=USER)(text)
    assert secret not in scrubbed
    assert marker in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3",
        "took 12:30:45",
        "id 1234",
        "4111 1111 1111 1112",
        "the alicesmith account",
        "ratio 3.14",
        "author: Bob",
        "design=flat signal=TERM",
        "built 2026-11-29 12:34:56 in 1.2.3-4",
        "b67f5089869dca46eb820d349bffa94c821b13bd6f8dd59ad664abeba98ba140",
        "democli.command.duration",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Scrubber(home=HOME, user=USER)(text) == text


def test_stack_paths_become_relative_to_their_import_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.path", ["/home/alice/.venv/lib/python3.11/site-packages", "/x"])
    path = "/home/alice/.venv/lib/python3.11/site-packages/acme/cli.py"
    assert relative_path(path) == "acme/cli.py"


SCHEMA = Schema(
    commands={"run": {"target": field("string", "What to run")}},
    events={"done": {"note": field("string", "A note")}},
    attributes={"detail": field("string", "Detail"), "kind": field("string", "Kind")},
)
SECRETS = [secret for _, secret, _ in CORPUS if secret != "alice"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    position=st.sampled_from(
        [
            "command name",
            "param value",
            "event attribute",
            "span attribute",
            "span event",
            "metric attribute",
            "log message",
            "exception",
        ]
    ),
    index=st.integers(min_value=0, max_value=len(CORPUS) - 1),
    prefix=st.text(alphabet="abc -_:/", max_size=8),
)
def test_no_personal_data_reaches_the_wire_from_any_position(
    tmp_path_factory: pytest.TempPathFactory, position: str, index: int, prefix: str
) -> None:
    text, secret, _ = CORPUS[index]
    value = f"{prefix} {text} "
    state = tmp_path_factory.mktemp("state")
    with OTLPReceiver() as receiver, pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", HOME)
        patch.setenv("USER", USER)
        with phonehome.instrument(
            "democli", vendor=receiver.url, state_dir=state, schema=SCHEMA, mode="ci", ci_budget=10
        ) as t:
            if position == "command name":
                with t.command(value):
                    pass
            elif position == "param value":
                with t.command("run", params={"target": value}):
                    pass
            elif position == "event attribute":
                t.event("done", {"note": value})
            elif position == "span attribute":
                with t.span("work", {"detail": value}):
                    pass
            elif position == "span event":
                with t.span("work") as span:
                    span.add_event("step", {"detail": value})
            elif position == "metric attribute":
                t.counter("runs").add(1, {"kind": value})
            elif position == "log message":
                logging.getLogger("acme").error("failed: %s", value)
            else:
                with pytest.raises(RuntimeError), t.command("run"):
                    raise RuntimeError(value)
        assert receiver.requests, "nothing was delivered: the property would hold vacuously"
        wire = b"".join(receiver.bodies)
    assert secret.encode() not in wire
    for other in SECRETS:
        assert other.encode() not in wire
    assert b"/home/alice" not in wire


def test_long_texts_are_cut_so_the_work_per_value_is_bounded() -> None:
    scrubbed = Scrubber(home=HOME, user=USER)("x " * 1_000_000 + " alice@example.com")
    assert len(scrubbed) <= MAX_TEXT + 1 and scrubbed.endswith("x…")


@pytest.mark.parametrize("secret", ["alice.smith@example.com", "ghp_" + "a" * 36, "10.20.30.40"])
@pytest.mark.parametrize("shift", range(-30, 4, 3))
def test_a_cut_never_leaves_a_fragment_of_what_it_would_have_scrubbed(
    secret: str, shift: int
) -> None:
    """Scrubbed whole first, then cut at a token boundary: wherever the limit falls inside
    the secret, no piece of it of 4 characters or more is left."""
    text = "y" * (MAX_TEXT + shift - 1) + " " + secret + " tail"
    scrubbed = Scrubber(home=HOME, user=USER)(text)
    assert len(scrubbed) <= MAX_TEXT + 1
    fragments = {secret[i : i + 4] for i in range(len(secret) - 3)} - {"yyyy"}
    tail = scrubbed[MAX_TEXT - 60 :]
    assert not [f for f in fragments if f in tail]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=3000))
def test_any_text_is_scrubbed_without_error_and_within_bounds(text: str) -> None:
    scrubbed = Scrubber(home=HOME, user=USER)(text)
    assert len(scrubbed) <= MAX_TEXT + 1


ENCODINGS = {
    "plain": lambda s: s,
    "upper case": str.upper,
    "percent-encoded": lambda s: "".join(f"%{ord(c):02X}" if c in "@/:=" else c for c in s),
    "twice percent-encoded": lambda s: "".join(f"%25{ord(c):02X}" if c in "@/:" else c for c in s),
    "full-width": _fullwidth,
    "zero-width joined": "\u200b".join,
}
SECRETS_BY_KIND = {
    "email": lambda m: (f"{m}@example.org", m),
    "url credentials": lambda m: (f"https://u:{m}@example.org/", m),
    "password pair": lambda m: (f"db_password={m}", m),
    "json secret": lambda m: (f'{{"client_secret": "{m}"}}', m),
    "query signature": lambda m: (f"https://h.example/x?signature={m}&a=1", m),
}


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(SECRETS_BY_KIND)),
    encoding=st.sampled_from(sorted(ENCODINGS)),
    marker=st.text(alphabet="qwxzjkvbnm", min_size=8, max_size=16),
    before=st.text(alphabet=" ,;([{<'\"\t\n", max_size=4),
    after=st.text(alphabet=" ,;)]}>'\".\t\n", max_size=4),
)
def test_no_encoding_hides_a_secret(
    kind: str, encoding: str, marker: str, before: str, after: str
) -> None:
    import unicodedata
    from urllib.parse import unquote

    text, needle = SECRETS_BY_KIND[kind](marker)
    scrubbed = Scrubber(home=HOME, user=USER)(before + ENCODINGS[encoding](text) + after)
    seen = unicodedata.normalize("NFKC", unquote(unquote(scrubbed))).replace("\u200b", "")
    assert needle.casefold() not in seen.casefold()
