"""Scrubbing: personal data and secrets out of every text value, on every signal.

Runs in the sender, before the SDK sees a record: span names, attribute values, log
bodies, exception messages and stack traces, span events. The home directory and user name
in paths become ``~`` and ``<user>``; e-mail and IP addresses, credentials in URLs, secrets
in query strings, tokens and keys (JWTs, GitHub, Slack, Google, AWS, Azure connection
strings and SAS signatures, ``password=``-style pairs, private keys) and card-like numbers
are replaced by a ``<kind>`` marker. Fields declared with ``scrub=False`` (and a reason) are
the only exemption.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

_REDACTED = "<redacted>"
_CACHE_SIZE = 4096
MAX_TEXT = 8192
"""Longer texts are cut (with "…") before scrubbing: telemetry needs no more, and the
scrubber's work per value stays bounded."""

# (name, pattern, replacement): order matters (specific before general).
_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "private key",
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
        "<private-key>",
    ),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", "<jwt>"),
    ("github token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})", "<token>"),
    ("slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", "<token>"),
    ("google key", r"\bAIza[0-9A-Za-z_-]{30,}", "<token>"),
    ("aws key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "<token>"),
    (
        "url credentials",
        r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@",
        r"\1<credentials>@",
    ),
    (
        "azure key",
        r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|InstrumentationKey"
        r"|ClientSecret)=[^;\s\"']+",
        r"\1=" + _REDACTED,
    ),
    (
        "query secret",
        r"(?i)([?&;](?:sig|signature|token|access_token|id_token|refresh_token|code"
        r"|key|api_key|apikey|password|secret|client_secret|auth)=)[^&\s#\"']+",
        r"\1" + _REDACTED,
    ),
    (
        "secret pair",
        r"(?i)\b((?:aws_secret_access_key|password|passwd|pwd|secret|token|api[_-]?key"
        r"|access[_-]?key|client[_-]?secret|auth[_-]?token)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"'&;,]+",
        r"\1" + _REDACTED,
    ),
    ("bearer", r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", r"\1 " + _REDACTED),
    ("email", r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,255}\.[A-Za-z]{2,24}", "<email>"),
    (
        "ipv6",
        r"(?<![\w:.])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
        r"|(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4})*)?"
        r"|::(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4})(?![\w:])",
        "<ip>",
    ),
    (
        "ipv4",
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
        r"(?![\w.])",
        "<ip>",
    ),
)
_CARD = r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"


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

    def __init__(self, home: str | None = None, user: str | None = None) -> None:
        home = home if home is not None else os.path.expanduser("~")
        user = user if user is not None else _user_name()
        rules: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = []
        if home and home not in ("/", "~") and len(home) > 1:
            variants = {home, home.replace("\\", "/"), home.replace("/", "\\")}
            alternatives = "|".join(
                re.escape(v.rstrip("/\\")) for v in sorted(variants, key=len, reverse=True)
            )
            rules.append((re.compile(f"(?:{alternatives})(?=[/\\\\]|$|\\s|[\"':;,)])"), "~"))
        rules += [
            (re.compile(pattern, re.DOTALL), replacement) for _, pattern, replacement in _RULES
        ]
        rules.append((re.compile(_CARD), _card))
        if user and len(user) >= 3:
            rules.append(
                (re.compile(rf"(?i)(?<![A-Za-z0-9]){re.escape(user)}(?![A-Za-z0-9])"), "<user>")
            )
        self._rules = rules
        self._cache: dict[str, str] = {}
        """Telemetry repeats itself (command names, results, enum values): each distinct
        text is scrubbed once per sender."""

    def __call__(self, text: str) -> str:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        original = text
        if len(text) > MAX_TEXT:  # bounded work per value, whatever a program logs
            text = text[:MAX_TEXT] + "…"
        for pattern, replacement in self._rules:
            text = pattern.sub(replacement, text)
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[original] = text
        return text

    def value(self, value: Any) -> Any:
        """Scrub a text, or each text in a list; leave other values alone."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list | tuple):
            return [self(v) if isinstance(v, str) else v for v in value]
        return value

    def attributes(self, attributes: dict[str, Any], exempt: Iterable[str] = ()) -> dict[str, Any]:
        skip = set(exempt)
        return {k: (v if k in skip else self.value(v)) for k, v in attributes.items()}


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "<card>" if 13 <= len(digits) <= 19 and _luhn(digits) else match.group(0)


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


def relative_stack(stack: str, roots: Iterable[str]) -> str:
    """Stack trace paths made relative to the import roots they live under."""
    for root in sorted({r for r in roots if r and len(r) > 1}, key=len, reverse=True):
        prefix = root.rstrip("/\\")
        stack = stack.replace(f'"{prefix}/', '"').replace(f'"{prefix}\\', '"')
    return stack
