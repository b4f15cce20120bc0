"""The consent resolver: one place decides, and records which source decided.

Any "off" wins, in this order: ``DO_NOT_TRACK``, ``<PREFIX>_TELEMETRY_OPTOUT``,
``OTEL_SDK_DISABLED``, the product's ``enabled=False``, the user's stored choice. Then an
"on" from ``enabled=True`` or the stored choice, then the integrator's default.
"""

from __future__ import annotations

import os
import time

from phonehome._core import environment as env
from phonehome._core.diagnostics import warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path
    from typing import Literal

    ConsentDefault = Literal["opt-in", "opt-out"]

CONSENT_FILE = "consent.json"


class Decision:
    """Whether telemetry is on, the source that decided and what it said.

    (A plain class rather than a dataclass or NamedTuple: building those at import time
    costs a CLI more than this whole module.)
    """

    __slots__ = ("detail", "enabled", "source")

    def __init__(self, enabled: bool, source: str, detail: str) -> None:
        self.enabled = enabled
        self.source = source
        self.detail = detail

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return (self.enabled, self.source, self.detail) == (
            other.enabled,
            other.source,
            other.detail,
        )

    def __hash__(self) -> int:
        return hash((self.enabled, self.source, self.detail))

    def __repr__(self) -> str:
        return f"Decision(enabled={self.enabled!r}, source={self.source!r}, detail={self.detail!r})"

    def __str__(self) -> str:
        return f"{'on' if self.enabled else 'off'} ({self.detail})"


class Resolver:
    """Everything consent depends on, fixed at ``instrument()`` time.

    ``where`` is the state directory, or a callable that locates it only if it is needed.
    Deciding uses plain path strings: an opted-out run must not pay for ``pathlib``.
    """

    __slots__ = ("automation", "default", "enabled", "prefix", "where")

    def __init__(
        self,
        prefix: str,
        default: ConsentDefault,
        enabled: bool | None,
        where: str | os.PathLike[str] | Callable[[], str],
        automation: str = "tag",
    ) -> None:
        self.prefix = prefix
        self.default = default
        self.enabled = enabled
        self.where = where
        self.automation = automation

    @property
    def state_path(self) -> str:
        """The state directory, as a string."""
        where = self.where
        return where() if callable(where) else os.fspath(where)

    @property
    def state_dir(self) -> Path:
        """The state directory, as a ``Path`` (for the consent-on path and the tools)."""
        from pathlib import Path

        return Path(self.state_path)

    @property
    def consent_file(self) -> str:
        return os.path.join(self.state_path, CONSENT_FILE)

    def resolve(self, environ: Mapping[str, str] | None = None) -> Decision:
        """Decide now. Invalid values count as "off" and are reported once."""
        environ = os.environ if environ is None else environ
        optout = env.TELEMETRY_OPTOUT.format(prefix=self.prefix)
        for name, off_when in (
            (env.DO_NOT_TRACK, True),
            (optout, True),
            (env.OTEL_SDK_DISABLED, True),
        ):
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            value = env.flag(raw)
            if value is None:
                warn(
                    f"{name}={raw!r} is not a yes/no value (use 1/true/yes/on or "
                    f"0/false/no/off); telemetry is off until it is fixed"
                )
                return Decision(False, name, f"{name}={raw!r} (invalid, treated as off)")
            if value is off_when:
                return Decision(False, name, f"{name}={raw}")
        level_name = env.TELEMETRY_LEVEL.format(prefix=self.prefix)
        if level(environ, self.prefix) == "off":
            return Decision(False, level_name, f"{level_name}=off")
        if self.automation == "drop":
            detected = automation(environ)
            if detected is not None:
                return Decision(False, "automation", f"running under {detected} (policy: drop)")
        if self.enabled is False:
            return Decision(False, "enabled", "the product's configuration (enabled=False)")
        stored = self.stored_choice()
        if stored is False:
            return Decision(False, "stored", f"the user's stored choice ({self.consent_file})")
        if self.enabled is True:
            return Decision(True, "enabled", "the product's configuration (enabled=True)")
        if stored is True:
            return Decision(True, "stored", f"the user's stored choice ({self.consent_file})")
        return Decision(
            self.default == "opt-out", "default", f"the product's default ({self.default})"
        )

    def stored_choice(self) -> bool | None:
        """The user's stored choice, or ``None`` when there is none (or it is unreadable)."""
        try:
            with open(self.consent_file, encoding="utf-8", errors="replace") as file:
                text = file.read()
        except (FileNotFoundError, NotADirectoryError):  # no choice stored: no file
            return None
        except OSError as error:
            warn(f"the stored consent at {self.consent_file} is unreadable ({error}); ignoring it")
            return None
        import json

        try:
            value = json.loads(text).get("enabled")
        except (ValueError, AttributeError) as error:
            warn(f"the stored consent at {self.consent_file} is unreadable ({error}); ignoring it")
            return None
        if isinstance(value, bool):
            return value
        warn(f"the stored consent at {self.consent_file} has no yes/no choice; ignoring it")
        return None

    def store_choice(self, enabled: bool) -> None:
        """Write the user's choice (``telemetry enable`` / ``disable``) to the consent file.

        What else a choice does (forgetting the install id, purging the spool) is the
        caller's: ``phonehome._host.choice``.
        """
        import json
        from pathlib import Path

        from phonehome._core import state as statefiles

        record = {"enabled": enabled, "changed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        statefiles.write_text(Path(self.consent_file), json.dumps(record) + "\n")


def level(environ: Mapping[str, str], prefix: str) -> str:
    """The telemetry level: ``<PREFIX>_TELEMETRY_LEVEL``, or ``all``; a bad value counts as
    ``off``, with one warning."""
    name = env.TELEMETRY_LEVEL.format(prefix=prefix)
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return "all"
    if raw not in env.LEVELS:
        warn(
            f"{name}={raw!r} is not one of {', '.join(env.LEVELS)}; telemetry is off until "
            "it is fixed"
        )
        return "off"
    return raw


def automation(environ: Mapping[str, str]) -> str | None:
    """The CI provider or AI coding agent running this program, if any."""
    return env.detected(environ, (*env.AGENT_VARIABLES, *env.CI_VARIABLES))


class LiveConsent:
    """A callable answering "is consent on right now?", cheap enough for every span.

    It re-resolves at most once per ``interval`` seconds, so a user who opts out while a
    service runs (a variable, ``phonehome disable`` from another shell) stops the data
    within that interval; :meth:`revoke` stops it at once.
    """

    __slots__ = ("_checked", "_decision", "_interval", "_resolver")

    def __init__(self, resolver: Resolver, decision: Decision, interval: float = 1.0) -> None:
        self._resolver = resolver
        self._decision = decision
        self._interval = interval
        self._checked = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self._interval:
            self._checked = now
            try:
                self._decision = self._resolver.resolve()
            except Exception:  # an unreadable state must not turn data on or crash
                self._decision = Decision(False, "error", "consent could not be re-read")
        return self._decision.enabled

    @property
    def decision(self) -> Decision:
        self()
        return self._decision

    def revoke(self, decision: Decision) -> None:
        """Turn consent off now, without waiting for the next re-resolve."""
        self._decision = decision
        self._checked = time.monotonic()
