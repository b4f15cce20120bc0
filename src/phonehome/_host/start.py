"""Starting a block with consent on: schema, destinations, identity, resource, notice, the
hand-off and the recording, assembled in that order.

Only ``phonehome.instrument`` calls this, after consent said yes; nothing here runs or is
imported on the consent-off path.
"""

from __future__ import annotations

import os
from pathlib import Path

from phonehome._core import destinations as destinations_
from phonehome._core.consent import Decision, LiveConsent, Resolver, level
from phonehome._core.diagnostics import strict_schema, warn
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
    destinations = destinations_.resolve(settings.vendor, settings.user)
    if settings.vendor_optout:
        destinations = [(role, d) for role, d in destinations if role != "vendor"]
    session = identity.session_id()
    enforcer = Enforcer(
        schema,
        _salt(settings, state_dir),
        strict=strict_schema(),
        level=level(os.environ, settings.prefix),
        report_fields=bool(settings.schema_check),
    )
    hold = False
    if not settings.schema_check and not settings.debug and destinations:
        text = notice.text(settings.product, settings.prefix, schema.summary(), settings.notice_url)
        hold = notice.check(state_dir, settings.nologo, schema.fingerprint(), text, session)
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
    if settings.detected is None and handoff.has_destinations:
        from phonehome._host.usage import lifecycle

        event = lifecycle(state_dir, settings.product, settings.version)
        if event is not None:
            recording.event(*event)
    return Telemetry(resolver, decision, recording)


def _resource(settings: Settings, state_dir: Path, session: str) -> dict[str, str]:
    """The run's resource: who and where, anonymously, then the user's resource variables."""
    who = settings.detected
    attributes = resource.attributes(
        settings.product,
        settings.version,
        identity.install_id(state_dir, who, settings.automation),
        session,
    )
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
