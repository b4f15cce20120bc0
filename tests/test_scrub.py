"""Scrubbing: each kind of personal data or secret, and a property test on the wire."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import phonehome
from phonehome import Schema, field
from phonehome._host.attributes import relative_stack
from phonehome._policy.scrub import Scrubber
from phonehome.testing import OTLPReceiver

HOME, USER = "/home/alice", "alice"

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
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Scrubber(home=HOME, user=USER)(text) == text


def test_stack_paths_become_relative_to_their_import_root() -> None:
    stack = 'File "/home/alice/.venv/lib/python3.11/site-packages/acme/cli.py", line 3'
    assert relative_stack(stack, ["/home/alice/.venv/lib/python3.11/site-packages"]) == (
        'File "acme/cli.py", line 3'
    )


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
            "democli", vendor=receiver.url, state_dir=state, schema=SCHEMA, mode="ci"
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
    from phonehome._policy.scrub import MAX_TEXT

    scrubbed = Scrubber(home=HOME, user=USER)("x" * 1_000_000 + " alice@example.com")
    assert scrubbed == "x" * MAX_TEXT + "…"
