"""Scrubbing: personal data and secrets out of every text that leaves, on every signal.

Runs in the sender, before the SDK sees a record, on every text: span, event, metric and
instrument names, attribute keys and values, log bodies, exception types, messages and stack
traces. The text is first normalised the way an attacker would obfuscate it: percent-decoded
(also twice-encoded), NFKC-folded (full-width and other compatibility forms become ASCII),
zero-width characters removed; matching ignores case. Then:

- the home directory and any ``/home/<name>``, ``/Users/<name>``, ``C:\\Users\\<name>``
  become ``~`` and ``<user>``; the user's login name and the machine's host name become
  ``<user>`` and ``<host>``;
- e-mail, IPv4, IPv6 and MAC addresses, phone numbers, card-like numbers (Luhn), IBANs and
  US social security numbers become ``<email>``, ``<ip>``, ``<mac>``, ``<phone>``, ``<card>``,
  ``<iban>``, ``<ssn>``;
- credentials in URLs (``scheme://user:secret@``, ``scheme://:secret@``), the values of
  secret-bearing keys in any case or inside longer names (``DB_PASSWORD=``, ``api_token:``,
  JSON ``"access_token": "..."``, ``SecretAccessKey=``, query strings' ``sig=`` and
  ``X-Amz-Signature=``), bearer and basic credentials, JWTs, private key blocks (PEM, PGP),
  the token formats of GitHub, GitLab, Slack, Google, AWS, Azure, Stripe, OpenAI,
  Anthropic, npm, PyPI, SendGrid, Vault, Databricks, DigitalOcean, Shopify, Hugging Face, Groq
  and Linear, and the secret part of Slack, Discord and Teams webhook URLs become
  ``<redacted>``, ``<token>``, ``<jwt>``, ``<private-key>``.

The whole text (up to ``MAX_INPUT``) is scrubbed first, then cut to ``MAX_TEXT`` at a token
boundary, so a cut never leaves a fragment of something the scrubber would have recognised.
Fields declared with ``scrub=False`` (and a reason) are the only exemption.
"""

from __future__ import annotations

import os
import re

from phonehome._core.diagnostics import errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

_REDACTED = "<redacted>"
_CACHE_SIZE = 4096
MAX_TEXT = 8192
"""Longer texts are cut (with "…") after scrubbing: telemetry needs no more."""
MAX_INPUT = 65536
"""What is scrubbed at most of one text, so the work per value stays bounded; nothing past
``MAX_TEXT`` is ever sent."""

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))

_SECRET_WORD = (
    r"(?:pass(?:word|wd|phrase)|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|private[_-]?key|credentials?|session[_-]?(?:id|key|token)|cookie|signature"
    r"|(?<![a-z])auth(?:orization)?(?![a-z])|client[_-]?secret|conn(?:ection)?[_-]?str(?:ing)?"
    r"|account[_-]?key|shared[_-]?access[_-]?key|(?<![a-z])(?:sig|sas|otp|pin|pwd)(?![a-z]))"
)
"""A word that marks a key as holding a secret, anywhere inside the key's name."""
_KEY = rf"[\w.-]*?{_SECRET_WORD}[\w.-]*"
_TOKEN_PREFIXES = (
    *("gh", "glpat-", "xox", "aiza", "akia", "asia", "k_live_", "k_test_", "sk-", "npm_"),
    *("pypi-", "ya29.", "sg.", "hvs.", "dapi", "dop_v1_", "shpat_", "hf_", "gsk_", "lin_api_"),
)
"""What a text holds for the token formats' rule to run (lower-cased)."""

# (name, pattern, replacement, trigger): order matters (specific before general). A rule runs
# only on a text that holds one of its trigger's substrings (lower-cased): most texts skip
# most rules at the cost of a substring search.
_RULES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "private key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----.*?"
        r"(?:-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|\Z)",
        "<private-key>",
        ("private key",),
    ),
    ("jwt", r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*", "<jwt>", ("eyj",)),
    (
        "token formats",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}"
        r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[\w-]{30,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|sk-(?:ant-|proj-)?[\w-]{20,}"
        r"|npm_[A-Za-z0-9]{30,}|pypi-[\w-]{40,}|ya29\.[\w-]{20,}|SG\.[\w-]{16,}\.[\w-]{16,}"
        r"|hvs\.[\w-]{20,}|dapi[0-9a-f]{32}|dop_v1_[0-9a-f]{40,}|shpat_[0-9a-f]{32}"
        r"|hf_[A-Za-z]{30,}|gsk_[A-Za-z0-9]{40,}|lin_api_[A-Za-z0-9]{30,})",
        "<token>",
        _TOKEN_PREFIXES,
    ),
    (
        "webhook urls",
        r"(https?://(?:hooks\.slack\.com/(?:services|workflows)"
        r"|(?:canary\.|ptb\.)?discord(?:app)?\.com/api/webhooks"
        r"|[\w-]+\.webhook\.office\.com/webhookb2|outlook\.office\.com/webhook)/)[^\s\"'<>]+",
        r"\1" + _REDACTED,
        ("hooks.slack", "discord", "webhook"),
    ),
    (
        "url credentials",
        r"\b([a-z][a-z0-9+.-]*://)[^/\s:@]*(?::[^/\s@]*)?@",
        r"\1<credentials>@",
        ("@",),
    ),
    (
        "bearer",
        r"\b(bearer|basic|token|digest)\s+[\w.~+/=-]{8,}",
        r"\1 " + _REDACTED,
        ("bearer", "basic", "token", "digest"),
    ),
    (
        "query secret",
        rf"([?&;#](?:{_KEY}|code|key|state)=)[^&\s#\"'<>]+",
        r"\1" + _REDACTED,
        ("=",),
    ),
    # an address, also cut short or local (user@host): its top-level domain is not required
    ("email", r"[\w.%+-]{1,64}@[\w-]+(?:\.[\w-]+)*", "<email>", ("@",)),
    (
        "mac",
        r"(?<![\w:-])(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}(?![\w:-])",
        "<mac>",
        (":", "-"),
    ),
    (
        "ipv6",
        r"(?<![\w.])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
        r"|(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4})*)?"
        r"|::(?:[0-9a-f]{1,4}:){0,6}[0-9a-f]{1,4})(?![\w:]|\.\d)",
        "<ip>",
        (":",),
    ),
    (
        "ipv4",
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
        r"(?!\w|\.\d)",
        "<ip>",
        (".",),
    ),
    ("ssn", r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])", "<ssn>", ("-",)),
)
_PAIR_KEY = re.compile(r"(?<![\w.-])([\w.-]{1,80})([\"']?\s*[:=]\s*)")
"""A key and its separator: ``key = ``, ``key: ``, JSON ``"key": ``."""
_PAIR_VALUE = re.compile(
    r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    r"|(?!(?:bearer|basic|token|digest)\s+<)[^\s\"'&;,)}\]<]+",
    re.IGNORECASE,
)
_SECRET_NAME = re.compile(_SECRET_WORD, re.IGNORECASE)
_IBAN = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"
"""Case-sensitive, unlike the rules above: a lower-case word with digits is no IBAN."""
_CARD = r"(?<![\w.])(?:\d[ -]?){12,18}\d(?![\w.])"
_PHONE = (
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}"
    r"|\(\d{3}\) ?\d{3}[.-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?!\w|[.-]\d)"
)
"""International numbers (with ``+``) and the North American forms; digits grouped by
spaces alone are too common to be taken for a phone number."""
_HOMES = r"(?:/home/|/Users/|/export/home/|[A-Za-z]:[\\/](?:Users|Documents and Settings)[\\/])"


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class Scrubber:
    """Compiled once per sender; ``__call__`` scrubs one text."""

    def __init__(
        self, home: str | None = None, user: str | None = None, host: str | None = None
    ) -> None:
        home = home if home is not None else os.path.expanduser("~")
        user = user if user is not None else _user_name()
        host = host if host is not None else _host_name()
        rules: list[Rule] = []
        if home and home not in ("/", "~") and len(home) > 1:
            variants = {home, home.replace("\\", "/"), home.replace("/", "\\")}
            alternatives = "|".join(
                re.escape(v.rstrip("/\\")) for v in sorted(variants, key=len, reverse=True)
            )
            rules.append(
                (re.compile(f"(?i)(?:{alternatives})(?=[/\\\\]|$|\\s|[\"':;,)])"), "~", ())
            )
        homes = ("/home/", "/users/", "/export/home/", ":\\", ":/")
        rules.append((re.compile(rf"(?i)({_HOMES})[^/\\\s\"':;,)]+"), r"\1<user>", homes))
        flags = re.IGNORECASE | re.DOTALL
        for name, pattern, replacement, trigger in _RULES:
            rules.append((re.compile(pattern, flags), replacement, trigger))
            if name == "query secret":  # before e-mail: a value may hold an address
                rules.append((_secret_pairs, None, ("=", ":")))
        rules.append((re.compile(_IBAN), "<iban>", ()))
        rules.append((re.compile(_CARD), _card, ()))
        rules.append((re.compile(_PHONE), _phone, ()))
        for name, marker in sorted(((user, "<user>"), (host, "<host>")), key=lambda p: -len(p[0])):
            if name and len(name) >= 3:
                rules.append(
                    (
                        re.compile(rf"(?i)(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])"),
                        marker,
                        (),
                    )
                )
        self._rules = rules
        self._cache: dict[str, str] = {}
        """Telemetry repeats itself (command names, results, enum values): each distinct
        text is scrubbed once per sender."""

    def __call__(self, text: str) -> str:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        scrubbed = _cut(self._scrub(normalize(text[:MAX_INPUT])))
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[text] = scrubbed
        return scrubbed

    def _scrub(self, text: str) -> str:
        lowered = text.lower()
        for pattern, replacement, trigger in self._rules:
            if not trigger or any(t in lowered for t in trigger):
                if isinstance(pattern, re.Pattern):
                    text = pattern.sub(replacement, text)  # type: ignore[arg-type]
                else:
                    text = pattern(text)
                lowered = text.lower()
        return text

    def value(self, value: Any) -> Any:
        """Scrub a text, or each text in a list; leave other values alone."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list | tuple):
            return [self(v) if isinstance(v, str) else v for v in value]
        return value

    def attributes(self, attributes: dict[str, Any], exempt: Iterable[str] = ()) -> dict[str, Any]:
        """Keys and values scrubbed; the values of ``exempt`` keys sent as they are. A pair
        that cannot be scrubbed is dropped and counted: fail closed."""
        skip = exempt if isinstance(exempt, set | frozenset) else set(exempt)
        kept: dict[str, Any] = {}
        for key, value in attributes.items():
            try:
                kept[self(str(key))] = value if key in skip else self.value(value)
            except Exception as error:
                errors[f"scrub: {type(error).__name__}"] += 1
        return kept


def normalize(text: str) -> str:
    """What the scrubber matches against: percent-decoded, NFKC-folded, no zero-width
    characters. (Telemetry text is for people to read; nothing is lost by decoding it.)"""
    if "%" in text:
        from urllib.parse import unquote

        for _ in range(3):  # twice-encoded text (%2540) is still an address
            decoded = unquote(text, errors="strict") if _valid_escapes(text) else text
            if decoded == text:
                break
            text = decoded
    if not text.isascii():
        import unicodedata

        text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    return text


def _valid_escapes(text: str) -> bool:
    """Whether decoding ``text`` gives valid UTF-8 (else it is left as it is)."""
    from urllib.parse import unquote_to_bytes

    try:
        unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_BOUNDARY = re.compile(r"[\s,;()\[\]{}\"'<>|]")


def _cut(text: str) -> str:
    """``text`` cut to ``MAX_TEXT``, at a token boundary: a token cut in two is dropped."""
    if len(text) <= MAX_TEXT:
        return text
    head = text[:MAX_TEXT]
    if not _BOUNDARY.match(text[MAX_TEXT]):
        last = max((m.start() for m in _BOUNDARY.finditer(head, MAX_TEXT - 512)), default=-1)
        head = head[:last] if last >= 0 else head[: MAX_TEXT - 512]
    return head.rstrip() + "…"


Rule = tuple[
    "re.Pattern[str] | Callable[[str], str]",
    "str | Callable[[re.Match[str]], str] | None",
    tuple[str, ...],
]
"""A compiled rule and its replacement (or a function of the whole text), and the substrings
one of which a text needs for it to run (``()``: none)."""


def _secret_pairs(text: str) -> str:
    """``text`` with the value of every key that names a secret redacted. Every key is
    looked at, also one inside another pair's value (``_: api_token=...``): a plain
    substitution would have consumed it with the first pair."""
    parts: list[str] = []
    done = 0
    for key in _PAIR_KEY.finditer(text):
        if key.start() < done or not _SECRET_NAME.search(key.group(1)):
            continue
        value = _PAIR_VALUE.match(text, key.end())
        if value is None:
            continue
        quoted = value.group(0)[:1] in ("'", '"')
        parts += (text[done : key.end()], f'"{_REDACTED}"' if quoted else _REDACTED)
        done = value.end()
    return "".join(parts) + text[done:] if parts else text


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    separated = text.startswith(("+", "(")) or any(c in text for c in " .-")
    return "<phone>" if 9 <= digits <= 15 and separated else text


def _user_name() -> str:
    for name in ("USER", "USERNAME", "LOGNAME"):
        value = os.environ.get(name, "")
        if value:
            return value
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no user name to be had: nothing to scrub for it
        return ""


def _host_name() -> str:
    try:
        import socket

        name = socket.gethostname()
    except Exception:  # no host name to be had: nothing to scrub for it
        return ""
    return name if name not in ("localhost", "localhost.localdomain") else ""
