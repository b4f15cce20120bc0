"""What end users and integrators ask of a product's telemetry, as plain functions.

Used by the ``phonehome`` command and by the ``telemetry`` subcommands the framework
integrations add to a host CLI. Each works from the product's name and state directory
alone (what the last run wrote there), without running the product.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from phonehome._core import environment as env
from phonehome._core.consent import Resolver, automation, level
from phonehome._spool import manifest as manifests
from phonehome._spool.manifest import Manifest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from phonehome._core.consentfiles import MachinePolicy
    from phonehome._core.destinations import Destination
    from phonehome._spool.segments import Spool


def _manifest(state_dir: Path) -> Manifest:
    return manifests.load(state_dir) or Manifest({})


def state_dir(product: str, override: str | os.PathLike[str] | None = None) -> Path:
    from phonehome._core.state import state_dir as locate

    return Path(locate(product, override))


def resolver(product: str, directory: Path) -> Resolver:
    found = _manifest(directory)
    return Resolver(
        env.prefix_for(product),
        found.consent,  # type: ignore[arg-type]
        found.enabled,
        directory,
        found.automation,
    )


def status(product: str, directory: Path) -> list[tuple[str, str]]:
    """The decision and who made it, the level, destinations (masked), where state lives."""
    from phonehome._core import settings

    prefix = env.prefix_for(product)
    found = _manifest(directory)
    decision = resolver(product, directory).resolve()
    resolved, policy = settings.resolve(product), _policy()
    rows = [
        ("telemetry", f"{'on' if decision.enabled else 'off'}, decided by {decision.detail}"),
        ("level", level(os.environ, prefix)),
        ("delivery", resolved.delivery_mode),
        *_policies(policy),
    ]
    who = automation(os.environ)
    if who:
        rows.append(("automation", f"{who} (policy: {found.automation})"))
    rows += _destinations(found)
    if resolved.vendor_optout:  # also for a value that is not yes/no: it counts as off
        rows.append(("vendor copy", f"off ({env.TELEMETRY_VENDOR_OPTOUT.format(prefix=prefix)})"))
    elif policy.vendor_off:
        rows.append(("vendor copy", "off (the machine policy)"))
    waiting = len(_spool(directory).names())
    rows.append(("state", f"{directory} ({waiting} segment(s) waiting to be sent)"))
    if waiting and not found.notice_confirmed and found.data:
        rows.append(("notice", held_text(product)))
    rows.append(("last delivery", _last_delivery(directory)))
    return rows


def held_text(product: str) -> str:
    """Why what waits is not sent: the first-run notice was shown in the last run."""
    return (
        f"shown in the last run of {product}: what that run recorded is held, and sent by "
        f"the next run of {product} if telemetry is still on"
    )


def _policy() -> MachinePolicy:
    from phonehome._core.consentfiles import read_policy
    from phonehome._core.settings import policy_file

    return read_policy(policy_file())


def _policies(policy: MachinePolicy) -> list[tuple[str, str]]:
    """The machine policy and the user-wide choice, when there are any."""
    from phonehome._core.consentfiles import read_user_choice
    from phonehome._core.settings import user_file

    rows = []
    if policy.path:
        rules = [
            *(["telemetry off for every product"] if policy.off else []),
            *(["the vendors' copies off"] if policy.vendor_off else []),
            *([f"a copy of everything to {policy.endpoint}"] if policy.endpoint else []),
        ]
        rows.append(("machine policy", f"{policy.path}: {'; '.join(rules) or 'no rule'}"))
    path = user_file()
    everywhere = read_user_choice(path)
    if everywhere is not None:
        rows.append(
            ("every product", f"{'on' if everywhere else 'off'} (the user-wide choice, {path})")
        )
    return rows


def _destinations(found: Manifest) -> list[tuple[str, str]]:
    entries = found.destination_entries
    if not entries:
        return [("destinations", "none recorded yet (the product has not run with consent)")]
    rows = []
    for entry in entries.values():
        try:
            described = manifests.destination(entry).describe()
        except (TypeError, ValueError):
            described = "unreadable"
        rows.append((f"{entry.get('role', '?')} destination", described))
    return rows


def _spool(directory: Path) -> Spool:
    from phonehome._spool.segments import Spool

    return Spool(directory / "spool")


def _last_delivery(directory: Path) -> str:
    from phonehome._sender.deliver import REPORT_FILE

    try:
        report = json.loads((directory / REPORT_FILE).read_text())
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.get("at", 0)))
        sent = sum(report.get("delivered", {}).values())
        failed = ", ".join(report.get("failed", {}).values()) or "no failures"
    except (OSError, ValueError, AttributeError, TypeError):
        return "none yet"
    return f"{at}: {sent} record(s) sent, {failed}"


def known_products() -> list[str]:
    """The products with telemetry state in this user's default location."""
    from phonehome._core.settings import platform_state_dir

    root = os.path.dirname(platform_state_dir("x"))
    try:
        names = os.listdir(root)
    except OSError:
        return []
    return sorted(n for n in names if os.path.isdir(os.path.join(root, n)))


def products() -> list[tuple[str, str]]:
    """Every product with telemetry state in this user's default location: its decision
    and what waits."""
    rows = []
    for product in known_products():
        directory = state_dir(product)
        decision = resolver(product, directory).resolve()
        waiting = len(_spool(directory).names())
        rows.append(
            (
                product,
                f"{'on' if decision.enabled else 'off'} ({decision.detail}); "
                f"{waiting} segment(s) waiting; {directory}",
            )
        )
    return rows


def set_consent_everywhere(enabled: bool) -> tuple[str, list[str]]:
    """Store the user's choice for every product built on phonehome; a "no" also purges
    what waits and forgets the install id of every product that has state here. Returns
    the file written and the products purged."""
    from phonehome._core.consentfiles import store_user_choice
    from phonehome._core.settings import user_file
    from phonehome._host.identity import forget

    path = user_file()
    store_user_choice(path, enabled)
    purged = []
    if not enabled:
        for product in known_products():
            directory = state_dir(product)
            forget(directory)
            _spool(directory).purge()
            purged.append(product)
    return path, purged


def set_consent(product: str, directory: Path, enabled: bool) -> None:
    """Store the user's choice; a "no" also purges what is waiting and forgets the id."""
    from phonehome._host.choice import store

    store(resolver(product, directory), enabled)


def reset_id(directory: Path) -> None:
    from phonehome._host.identity import forget

    forget(directory)


def preview(directory: Path) -> dict[str, Any]:
    """What is waiting to be sent, exactly as the vendor will get it (through the same
    schema exemptions, scrubbing and SDK replay as a delivery), and what was sent."""
    from phonehome._policy.exemptions import Exemptions
    from phonehome._policy.scrub import Scrubber
    from phonehome._sender.ledger import entries
    from phonehome._sender.replay import map_segment
    from phonehome._spool.segments import Spool

    spool = Spool(directory / "spool")
    scrub = Scrubber()
    exemptions = Exemptions.from_data(_manifest(directory).exemptions)
    waiting: list[dict[str, Any]] = []
    for name in spool.names():
        segment = spool.read(name)
        if segment is not None:
            waiting += _described(map_segment(segment, lambda: True, scrub, exemptions))
    return {"waiting": waiting, "sent": entries(directory)}


def _described(mapped: Any) -> list[dict[str, Any]]:
    """Spans, log records and metric points, each as a small dict."""
    found: list[dict[str, Any]] = [
        {"span": span.name, "attributes": dict(span.attributes or {})} for span in mapped.spans
    ]
    for log in mapped.logs:
        record = log.log_record
        found.append(
            {
                "log": record.event_name or record.body,
                "attributes": dict(record.attributes or {}),
            }
        )
    for resource_metrics in mapped.metrics.resource_metrics if mapped.metrics else ():
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = getattr(point, "value", None)
                    found.append(
                        {
                            "metric": metric.name,
                            "value": value if value is not None else getattr(point, "sum", None),
                            "attributes": dict(point.attributes or {}),
                        }
                    )
    return found


def flush(
    product: str, directory: Path, budget: float, say: Callable[[str], None]
) -> tuple[list[str], str]:
    """Deliver what is waiting now, in this process: each failed destination named, with
    the reason (one line each), and what happened. ``say`` tells, as it happens, that a
    running sender is waited for."""
    from phonehome._sender.deliver import deliver

    found = manifests.load(directory)
    waiting = len(_spool(directory).names())
    if found is None or not waiting:
        return [], "nothing is waiting to be sent"
    decision = resolver(product, directory).resolve()
    if decision.enabled and not found.notice_confirmed:
        return [], f"{waiting} segment(s) held, nothing sent: the notice was {held_text(product)}"
    before = _last_failures(directory)
    deadline = time.monotonic() + budget
    fd = _lock_within(directory, deadline, product, say)
    if fd is None:
        return [
            f"a sender was still delivering for {product} after {budget:g} s (--timeout); "
            "what waits goes with it"
        ], f"{waiting} segment(s) waiting"
    if not _spool(directory).names():
        os.close(fd)
        return [], "nothing is waiting to be sent: the sender that was running delivered it"
    report = deliver(directory, max(0.0, deadline - time.monotonic()), lock_fd=fd, retry_now=True)
    assert report is not None  # the lock is ours
    if report.purged:
        return [], f"telemetry is off ({decision.detail}): {report.purged} segment(s) purged"
    failures = [
        f"{_label(found, key)}: {_reason(found, key, error)}"
        for key, error in sorted(report.failed.items())
    ]
    pending = report.pending_segments
    if pending and not failures:  # nothing failed in time, and yet not everything went
        failures = _unfinished(found, budget, _asked_to_wait(directory, report.waiting), before)
    sent = sum(report.delivered.values())
    return failures, f"sent {sent} record(s); {pending} segment(s) still waiting"


def _lock_within(
    directory: Path, deadline: float, product: str, say: Callable[[str], None]
) -> int | None:
    """The sender lock, waiting for a running sender to finish until ``deadline`` (said once)."""
    from phonehome._spool.lock import try_lock

    fd = try_lock(directory)
    if fd is None and time.monotonic() < deadline:
        say(f"a sender is delivering for {product}: waiting for it to finish")
    while fd is None and time.monotonic() < deadline:
        time.sleep(0.1)
        fd = try_lock(directory)
    return fd


def _asked_to_wait(directory: Path, waiting: list[str]) -> bool:
    """Whether one of the destinations that wait does so for a ``Retry-After`` (and not
    for its backoff after failures)."""
    from phonehome._spool.schedule import Schedule

    schedule = Schedule(os.path.join(_spool(directory).directory, "progress"))
    return any(schedule.waits(key, backoff=False) for key in waiting)


def _label(found: Manifest, key: str) -> str:
    entry = found.destination_entries.get(key, {})
    try:
        return f"{entry.get('role', '?')} destination {manifests.destination(entry).describe()}"
    except (TypeError, ValueError):
        return f"destination {key}"


def _unfinished(found: Manifest, budget: float, held: bool, before: dict[str, str]) -> list[str]:
    """Why data still waits when no export failed in time (the exporter was still retrying
    at the deadline): a Retry-After, a destination that cannot be reached, the error of the
    previous delivery, or only time."""
    ran_out = f"the time ran out after {budget:g} s (--timeout)"
    unreachable = []
    for key in sorted(found.destination_entries):
        reason = _reason(found, key, "")
        if reason:
            unreachable.append(f"{_label(found, key)}: {reason}")
    if unreachable:
        return unreachable
    if held:
        return ["a destination asked to wait (Retry-After); what waits goes after that"]
    lines = [
        f"{_label(found, key)}: {ran_out}, still retrying after {before[key]} "
        "(the last delivery's error)"
        for key in sorted(found.destination_entries)
        if key in before
    ]
    return lines or [ran_out]


def _last_failures(directory: Path) -> dict[str, str]:
    """Each destination's error in the last delivery's report, if any."""
    from phonehome._sender.deliver import REPORT_FILE

    try:
        failed = json.loads((directory / REPORT_FILE).read_text()).get("failed", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}


def _reason(found: Manifest, key: str, error: str) -> str:
    """Why a destination failed: the export's own error (an HTTP status), or what a
    connection to it says now (refused, no answer, a name that does not resolve); ``""``
    when there is no error and it can be reached."""
    try:
        destination = manifests.destination(found.destination_entries.get(key, {}))
    except (TypeError, ValueError):
        return error
    url = _url(destination)
    if not url:
        return error
    if "HTTP " not in error:
        reached = _connect(url)
        if reached:
            return reached
    return f"{error} ({url})" if error else ""


def _url(destination: Destination) -> str:
    if destination.from_environment:
        variables = dict(destination.environment)
        return variables.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or variables.get(
            env.OTEL_EXPORTER_OTLP_ENDPOINT, ""
        )
    if destination.kind == "otlp" and destination.protocol != "grpc":
        return destination.signal_endpoint("traces")
    return destination.endpoint


def _connect(url: str, timeout: float = 3.0) -> str:
    """What connecting to ``url``'s host says, or ``""`` when it accepts."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return ""
    except ConnectionRefusedError:
        return f"connection refused by {url}"
    except socket.gaierror:
        return f"the name {host!r} does not resolve ({url})"
    except TimeoutError:
        return f"no answer from {url} within {timeout:.0f} s"
    except OSError as error:
        return f"{error.strerror or error} ({url})"
