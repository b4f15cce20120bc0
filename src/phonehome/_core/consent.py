"""The consent resolver: one place decides, and records which source decided.

Any "off" wins, in this order: ``DO_NOT_TRACK``, ``<PREFIX>_TELEMETRY_OPTOUT``,
``OTEL_SDK_DISABLED``, ``<PREFIX>_TELEMETRY_LEVEL=off``, the machine policy, the
automation policy ``drop``, the product's ``enabled=False``, the user's choice for every
product (``phonehome disable --all``), the user's stored choice for this product. Then an
"on" from ``enabled=True``, the user-wide "yes", the product's stored "yes", then the
integrator's default. ``docs/configuration.md`` states the same order; tests check every
pair of sources.

The machine policy and the user-wide choice are TOML files (``phonehome._core.settings``
locates them, ``phonehome._core.consentfiles`` reads them). When neither exists, each costs
one ``stat`` and nothing is imported.

This module is on the consent-off path of every CLI, so it does without ``from __future__
import annotations`` (importing ``__future__`` costs more than the module's own code): names
that exist only for type checking are quoted.
"""

import os
import time

from phonehome._core import environment as env
from phonehome._core.settings import policy_file, user_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Literal

    from phonehome._core.consentfiles import MachinePolicy

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

    __slots__ = ("automation", "default", "enabled", "policy", "prefix", "where")

    def __init__(
        self,
        prefix: str,
        default: "ConsentDefault",
        enabled: bool | None,
        where: "str | os.PathLike[str] | Callable[[], str]",
        automation: str = "tag",
    ) -> None:
        self.prefix = prefix
        self.default = default
        self.enabled = enabled
        self.where = where
        self.automation = automation
        self.policy: MachinePolicy | None = None
        """The machine policy as the last decision read it (its vendor and endpoint rules
        apply to a run with consent on); ``None`` when there is none."""

    @property
    def state_path(self) -> str:
        """The state directory, as a string."""
        where = self.where
        return where() if callable(where) else os.fspath(where)

    @property
    def consent_file(self) -> str:
        return os.path.join(self.state_path, CONSENT_FILE)

    def resolve(self, environ: "Mapping[str, str] | None" = None) -> Decision:
        """Decide now. Invalid values count as "off" and are reported once."""
        environ = os.environ if environ is None else environ
        return self._variables(environ) or self._choices(environ)

    def _variables(self, environ: "Mapping[str, str]") -> Decision | None:
        """The "off" of a variable, if one says so."""
        optout = env.TELEMETRY_OPTOUT.format(prefix=self.prefix)
        for name in (env.DO_NOT_TRACK, optout, env.OTEL_SDK_DISABLED):
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            value = env.flag(raw)
            if value is None:
                _warn(
                    f"{name}={raw!r} is not a yes/no value (use 1/true/yes/on or "
                    f"0/false/no/off); telemetry is off until it is fixed"
                )
                return Decision(False, name, f"{name}={raw!r} (invalid, treated as off)")
            if value:
                return Decision(False, name, f"{name}={raw}")
        level_name = env.TELEMETRY_LEVEL.format(prefix=self.prefix)
        if level(environ, self.prefix) == "off":
            return Decision(False, level_name, f"{level_name}=off")
        return None

    def _choices(self, environ: "Mapping[str, str]") -> Decision:
        """The machine policy, the code, the user's choices (every product's, then this
        one's), then the default."""
        self.policy = policy = _read_policy(policy_file(environ))
        if policy is not None and policy.off:
            return Decision(False, "policy", f"the machine policy ({policy.path})")
        if self.automation == "drop":
            detected = automation(environ)
            if detected is not None:
                return Decision(False, "automation", f"running under {detected} (policy: drop)")
        if self.enabled is False:
            return Decision(False, "enabled", "the product's configuration (enabled=False)")
        path = user_file(environ)
        everywhere = _read_user_choice(path)
        stored = None if everywhere is False else self.stored_choice()
        for value, source, detail in (
            (everywhere, "user-wide", f"the user's choice for every product ({path})"),
            (stored, "stored", f"the user's stored choice ({self.consent_file})"),
        ):
            if value is False:
                return Decision(False, source, detail)
        if self.enabled is True:
            return Decision(True, "enabled", "the product's configuration (enabled=True)")
        if everywhere is True:
            return Decision(True, "user-wide", f"the user's choice for every product ({path})")
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
            _warn(f"the stored consent at {self.consent_file} is unreadable ({error}); ignoring it")
            return None
        from phonehome._core import jsontext

        try:
            value = jsontext.loads(text).get("enabled")
        except (ValueError, AttributeError) as error:
            _warn(f"the stored consent at {self.consent_file} is unreadable ({error}); ignoring it")
            return None
        if isinstance(value, bool):
            return value
        _warn(f"the stored consent at {self.consent_file} has no yes/no choice; ignoring it")
        return None

    def store_choice(self, enabled: bool) -> None:
        """Write the user's choice (``telemetry enable`` / ``disable``) to the consent file.

        What else a choice does (forgetting the install id, purging the spool) is the
        caller's: ``phonehome._host.choice``.
        """
        from phonehome._core import jsontext
        from phonehome._core import state as statefiles

        record = {"enabled": enabled, "changed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        statefiles.write_text(self.consent_file, jsontext.dumps(record) + "\n")


def _warn(message: str) -> None:
    from phonehome._core.diagnostics import warn  # loaded when there is something to say

    warn(message)


def _stat(path: str) -> "os.stat_result | OSError | None":
    """One ``stat`` of a consent file: ``None`` when there is none to read, the error when it
    cannot even be looked at (its reader reports that)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        return error


def _read_policy(path: str) -> "MachinePolicy | None":
    found = _stat(path)
    if found is None:
        return None
    from phonehome._core import consentfiles

    return consentfiles.read_policy(path, None if isinstance(found, OSError) else found)


def _read_user_choice(path: str) -> bool | None:
    found = _stat(path)
    if found is None:
        return None
    from phonehome._core import consentfiles

    return consentfiles.read_user_choice(path, None if isinstance(found, OSError) else found)


def level(environ: "Mapping[str, str]", prefix: str) -> str:
    """The telemetry level: ``<PREFIX>_TELEMETRY_LEVEL``, or ``all``; a bad value counts as
    ``off``, with one warning."""
    name = env.TELEMETRY_LEVEL.format(prefix=prefix)
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return "all"
    if raw not in env.LEVELS:
        _warn(
            f"{name}={raw!r} is not one of {', '.join(env.LEVELS)}; telemetry is off until "
            "it is fixed"
        )
        return "off"
    return raw


def automation(environ: "Mapping[str, str]") -> str | None:
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
        if time.monotonic() - self._checked >= self._interval:
            return self.now()
        return self._decision.enabled

    def now(self) -> bool:
        """Decide again at once: what the sender asks right before each export, so that
        nothing leaves after ``phonehome disable`` has returned (a few file reads, against
        a request over the network)."""
        self._checked = time.monotonic()
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
