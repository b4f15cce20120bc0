"""Starting a block with consent on: schema, destinations, identity, resource, notice, the
hand-off and the recording, assembled in that order.

Only ``phonehome.instrument`` calls this, after consent said yes; nothing here runs or is
imported on the consent-off path.
"""

from __future__ import annotations

import os
from pathlib import Path

from phonehome._core import destinations as destinations_
from phonehome._core.consent import Decision, LiveConsent, MachinePolicy, Resolver, level
from phonehome._core.diagnostics import notice_seen, warn
from phonehome._core.errors import SchemaError
from phonehome._core.settings import Settings
from phonehome._host import identity, notice, resource
from phonehome._host.handoff import Handoff
from phonehome._host.recording import Recording
from phonehome._host.telemetry import Telemetry
from phonehome._policy.enforce import Enforcer
from phonehome._policy.schema import Schema

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from phonehome._core.destinations import Role
    from phonehome._host.handoff import Courier


def start(
    settings: Settings, resolver: Resolver, decision: Decision, courier: Courier
) -> Telemetry:
    """The ``Telemetry`` of a block with consent on (off again if the schema is unusable)."""
    try:
        schema = load_schema(settings.schema)
    except (OSError, ValueError) as error:
        warn(f"instrument(schema=...): {error}; telemetry is off")
        return Telemetry(resolver, Decision(False, "invalid", f"bad schema: {error}"))
    for problem in settings.problems:
        warn(problem)
    state_dir = resolver.state_dir
    destinations = _destinations(settings, resolver.policy)
    session = identity.session_id()
    enforcer = Enforcer(  # never strict: in tests the recording raises at the call instead
        schema,
        _salt(settings, state_dir),
        level=level(os.environ, settings.prefix),
        report_fields=bool(settings.schema_check),
    )
    hold = False
    if not settings.schema_check and not settings.debug and destinations:
        text = notice.text(settings.product, settings.prefix, schema.summary(), settings.notice_url)
        nologo = settings.nologo or notice_seen()  # notice_seen: under phonehome_env
        hold = notice.check(state_dir, nologo, schema.fingerprint(), text, session)
    handoff = Handoff(
        settings=settings,
        state_dir=state_dir,
        destinations=destinations,
        resource=_resource(settings, state_dir, session),
        enforcer=enforcer,
        courier=courier,
        hold=hold,
    )
    recording = Recording(settings, LiveConsent(resolver, decision), handoff)
    if not settings.ephemeral and handoff.has_destinations:
        from phonehome._host.usage import lifecycle

        event = lifecycle(state_dir, settings.product, settings.version)
        if event is not None:
            recording.event(*event)
    return Telemetry(resolver, decision, recording)


def _destinations(
    settings: Settings, policy: MachinePolicy
) -> list[tuple[Role, destinations_.Destination]]:
    """Where this run's data goes: the vendor's (unless the user or the machine policy
    turned it off), the user's own, and the organisation's endpoint the policy names."""
    found = destinations_.resolve(settings.vendor, settings.user)
    if settings.vendor_optout or policy.vendor_off:
        found = [(role, d) for role, d in found if role != "vendor"]
    if policy.endpoint:  # checked when the policy was read
        found.append(("organisation", destinations_.otlp(policy.endpoint, allow_insecure=True)))
    return found


def _resource(settings: Settings, state_dir: Path, session: str) -> dict[str, str]:
    """The run's resource: who and where, anonymously, then the user's resource variables."""
    who = settings.detected
    if settings.ephemeral:  # CI, an agent, or `phonehome schema check`: no id is kept
        install = identity.install_id(state_dir, who or "check", settings.automation)
    else:
        install = identity.install_id(state_dir)
    attributes = resource.attributes(settings.product, settings.version, install, session)
    if who is not None and settings.automation == "tag":
        attributes["phonehome.automation"] = who
    return resource.with_environment(attributes, os.environ)


def _salt(settings: Settings, state_dir: Path) -> Callable[[], bytes]:
    """The salt of hashed fields, read on first use; in an ephemeral environment nothing is
    kept, so hashes do not join across runs."""
    if settings.ephemeral:
        ephemeral = os.urandom(16)
        return lambda: ephemeral
    return lambda: identity.salt(state_dir)


def load_schema(value: object) -> Schema:
    if value is None:
        return Schema()
    if isinstance(value, Schema):
        return value
    if isinstance(value, str | os.PathLike):
        return Schema.from_toml(Path(value))
    raise SchemaError(f"expected a Schema or the path of a TOML file, got {type(value).__name__}")
