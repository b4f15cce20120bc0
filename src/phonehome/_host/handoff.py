"""From the host's memory to the spool, and at the end to a sender.

Every batch of records goes through the schema (``phonehome._policy.enforce``) and is written
as one spool segment. What the end of the block does depends on the mode:

- ``cli``: start a detached sender (``phonehome._spool.lock.spawn``) unless one runs, or
  every destination waits (``phonehome._spool.schedule``); wait for nothing:
  the host takes the sender lock and hands its descriptor to the child, which runs
  ``python -m phonehome._sender`` in a new session with its streams on ``/dev/null``;
- ``ci``: deliver in this process within ``ci_budget``, because a detached process would be
  killed with the job;
- ``service``: deliver what is left within ``shutdown_timeout`` (a service delivers from a
  background thread while it runs, ``phonehome._host.service``);
- ``debug``: print the payload each destination would get, send nothing;
- ``check`` (``phonehome schema check``): report undeclared fields, write and send nothing.

The host never imports the sender: in-process delivery and the debug display come through a
:class:`Courier`, which ``phonehome.instrument`` provides.
"""

from __future__ import annotations

import _thread
import os

from phonehome._core import state as statefiles
from phonehome._core.diagnostics import warn
from phonehome._core.environment import instrument_name
from phonehome._host.identity import lasting
from phonehome._policy.enforce import Enforcer
from phonehome._policy.exemptions import Exemptions
from phonehome._spool import manifest
from phonehome._spool.lock import spawn
from phonehome._spool.manifest import Manifest
from phonehome._spool.records import Record, measure
from phonehome._spool.segments import Spool

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Literal, Protocol

    from phonehome._core.destinations import Destination, Role
    from phonehome._core.settings import Settings

    RunMode = Literal["cli", "ci", "service", "debug", "check"]

    class Courier(Protocol):
        """What the host needs of the sender, in its own process."""

        def deliver(self, state_dir: str, budget: float) -> bool:
            """Deliver what is spooled within ``budget``; ``False`` if a sender runs, or a
            destination failed or waits."""

        def show(self, records: list[Record], header: dict[str, Any], manifest: Manifest) -> None:
            """Print what each destination would be sent (debug mode)."""


def run_mode(settings: Settings) -> RunMode:
    """How this run hands its records over."""
    if settings.schema_check:
        return "check"
    if settings.debug:
        return "debug"
    return settings.delivery_mode


class Handoff:
    """The host side of delivery for one ``instrument()`` block."""

    def __init__(
        self,
        *,
        settings: Settings,
        state_dir: str,
        destinations: Sequence[tuple[Role, Destination]],
        resource: dict[str, Any],
        user_resource: dict[str, Any],
        enforcer: Enforcer,
        courier: Courier,
        hold: bool,
    ) -> None:
        self.settings = settings
        self.state_dir = state_dir
        self.enforcer = enforcer
        self.courier = courier
        self.hold = hold
        """This run showed the notice: what it records is kept, not sent (``notice``)."""
        self.mode: RunMode = run_mode(settings)
        self.spool = Spool(
            os.path.join(state_dir, "spool"), settings.spool_max_bytes, settings.spool_max_age
        )
        keyed = {manifest.destination_key(role, d): (role, d) for role, d in destinations}
        metric_prefix = instrument_name(settings.product)
        self.header = {
            "destinations": sorted(keyed),
            "resource": resource,
            "metric_prefix": metric_prefix,
        }
        """Each segment's header: destination keys, the run's resource, the metric prefix,
        and the user's own resource variables (for the user's destinations only)."""
        if user_resource and any(role == "user" for role, _ in keyed.values()):
            self.header["user_resource"] = user_resource
        self.manifest = manifest.Manifest.build(
            product=settings.product,
            prefix=settings.prefix,
            consent=settings.consent,
            enabled=settings.enabled,
            automation=settings.automation,
            max_bytes=settings.spool_max_bytes,
            max_age=settings.spool_max_age,
            metric_prefix=metric_prefix,
            resource=lasting(resource),
            destinations=keyed,
            exemptions=Exemptions.of(enforcer.schema).data(),
            notice_confirmed=not hold,
        )
        self.describe = tuple(f"{role}: {d.describe()}" for role, d in destinations)
        """The destinations, one line each, credentials masked."""
        self.debug_records: list[Record] = []
        self._manifest_written = False
        self._lock = _thread.allocate_lock()
        """One write at a time: the manifest once, the schema's counts, the fallback."""

    def hold_for_notice(self) -> None:
        """This run showed the notice (again): what it spools waits for the next run."""
        with self._lock:
            self.hold = True
            self.manifest.data["notice_confirmed"] = False
            self._manifest_written = False

    @property
    def has_destinations(self) -> bool:
        return bool(self.header["destinations"])

    def write(self, records: list[Record]) -> None:
        """Make records durable: one segment file.

        If the state directory cannot be written, the spool moves (once, with a warning) to
        a private directory under the system's temporary directory. Threads write one at a
        time.
        """
        with self._lock:
            self._write(records)

    def forked(self) -> None:
        """In the child of a fork: a new lock (a thread of the parent may have held this
        one), and none of the parent's records to show (debug mode)."""
        self._lock = _thread.allocate_lock()
        self.debug_records = []

    def _write(self, records: list[Record]) -> None:
        if self.mode == "check":  # `phonehome schema check`: report, never write or send
            self._enforce(records)
            self._report_undeclared()
            return
        if not self.has_destinations:
            return
        records = self._enforce(records)
        if self.mode == "debug":  # shown at the end, never written, never sent
            self.debug_records.extend(records)
            return
        try:
            if not self._manifest_written:
                manifest.write(self.state_dir, self.manifest)
                self._manifest_written = True
            self.spool.append(self.header, records)
        except OSError as error:
            self._fall_back(error, records)

    def _fall_back(self, error: OSError, records: list[Record]) -> None:
        statefiles.cannot_write(self.state_dir, error)
        try:
            fallback = statefiles.fallback_dir(self.state_dir)
        except OSError as refused:
            warn(
                f"no private temporary directory either ({refused.strerror or refused}); "
                "this run's telemetry is dropped"
            )
            return
        if self.state_dir == fallback:
            raise error
        self.state_dir = fallback
        self.spool = Spool(
            os.path.join(fallback, "spool"), self.spool.max_bytes, self.spool.max_age
        )
        self._manifest_written = False
        self._write(records)

    def _enforce(self, records: list[Record]) -> list[Record]:
        """The schema, applied before anything is written: undeclared values stop here."""
        enforcer = self.enforcer
        undeclared, unusable = enforcer.undeclared, enforcer.unusable
        kept = enforcer.enforce(records)
        for count, name, description in (
            (
                enforcer.undeclared - undeclared,
                "phonehome.schema.undeclared",
                "Attributes dropped because the telemetry schema does not declare them",
            ),
            (
                enforcer.unusable - unusable,
                "phonehome.schema.unusable",
                "Values dropped because they could not be reduced to what their policy allows",
            ),
        ):
            if count:
                kept.append(measure("counter", name, "{attribute}", description, count, {}))
        return kept

    def _report_undeclared(self) -> None:
        path = self.settings.schema_check
        found, self.enforcer.undeclared_fields = self.enforcer.undeclared_fields, []
        if path and found:
            with open(path, "a", encoding="utf-8") as report:
                report.writelines(f"{line}\n" for line in found)

    # -- after recording ---------------------------------------------------------------------
    def finish(self, child: bool = False, detached: bool = False) -> None:
        """Hand over what was spooled, as the mode says. In the ``child`` of a fork only a
        CLI run starts a sender: a CI run's or a service's parent delivers it. ``detached``:
        to a detached sender whatever the mode, as a CLI run does (the interpreter is
        exiting in a way that delivering here would change)."""
        if self.mode == "check":
            return
        if self.mode == "debug":
            self.courier.show(self.debug_records, self.header, self.manifest)
            return
        if self.hold or not self.has_destinations or not self.spool.names():
            return
        if self.mode == "cli" or detached:
            self._detach()
        elif child:
            return
        else:
            budget = (
                self.settings.ci_budget if self.mode == "ci" else self.settings.shutdown_timeout
            )
            try:
                self.deliver_now(budget)
            except RuntimeError:  # no thread may start: the interpreter is exiting (3.12)
                self._detach()

    def _detach(self) -> None:
        """A detached sender, unless every destination waits."""
        if not self._resting():
            spawn(self.state_dir, self.settings.sender_lifetime)

    def _resting(self) -> bool:
        """Every destination of this run waits (``Retry-After``, or the backoff of one that
        keeps failing): a sender would send nothing. One small file read."""
        waiting = self.spool.waiting_file
        if not os.path.exists(waiting):  # nothing waits: most runs, without loading the schedule
            return False
        from phonehome._spool.schedule import resting

        return resting(os.path.dirname(waiting), self.header["destinations"])

    def deliver_now(self, budget: float) -> bool:
        """Deliver in this process within ``budget`` seconds; ``False`` if another sender runs,
        or if this run may send nothing at all (debug and schema-check modes, whatever an
        earlier run left in the spool)."""
        if self.mode in ("debug", "check"):
            return False
        return self.courier.deliver(self.state_dir, budget)
