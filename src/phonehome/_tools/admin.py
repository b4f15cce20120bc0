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
from phonehome._core.consent import Resolver, level
from phonehome._spool import manifest as manifests
from phonehome._spool.manifest import Manifest


def _manifest(state_dir: Path) -> Manifest:
    return manifests.load(state_dir) or Manifest({})


def state_dir(product: str, override: str | os.PathLike[str] | None = None) -> Path:
    from phonehome._core.state import state_dir as locate

    return locate(product, override)


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
    from phonehome._core.consent import automation
    from phonehome._sender.deliver import REPORT_FILE
    from phonehome._spool.segments import Spool

    prefix = env.prefix_for(product)
    found = _manifest(directory)
    decision = resolver(product, directory).resolve()
    rows = [
        ("telemetry", f"{'on' if decision.enabled else 'off'}, decided by {decision.detail}"),
        ("level", level(os.environ, prefix)),
        ("delivery", settings.resolve(product).delivery_mode),
    ]
    who = automation(os.environ)
    if who:
        rows.append(("automation", f"{who} (policy: {found.automation})"))
    destinations = found.destination_entries
    if not destinations:
        rows.append(("destinations", "none recorded yet (the product has not run with consent)"))
    for entry in destinations.values():
        try:
            described = manifests.destination(entry).describe()
        except (TypeError, ValueError):
            described = "unreadable"
        rows.append((f"{entry.get('role', '?')} destination", described))
    if env.flag(os.environ.get(env.TELEMETRY_VENDOR_OPTOUT.format(prefix=prefix), "")) is True:
        rows.append(("vendor copy", f"off ({env.TELEMETRY_VENDOR_OPTOUT.format(prefix=prefix)})"))
    waiting = Spool(directory / "spool").names()
    rows.append(("state", f"{directory} ({len(waiting)} segment(s) waiting to be sent)"))
    try:
        report = json.loads((directory / REPORT_FILE).read_text())
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.get("at", 0)))
        sent = sum(report.get("delivered", {}).values())
        failed = ", ".join(report.get("failed", {}).values()) or "no failures"
        rows.append(("last delivery", f"{at}: {sent} record(s) sent, {failed}"))
    except (OSError, ValueError, AttributeError, TypeError):
        rows.append(("last delivery", "none yet"))
    return rows


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


def flush(directory: Path, budget: float) -> str:
    """Deliver what is waiting now, in this process."""
    from phonehome._sender.deliver import deliver

    report = deliver(directory, budget, retry_now=True)
    if report is None:
        return "a sender is already delivering for this product"
    if report.purged:
        return f"consent is off: {report.purged} waiting segment(s) purged, nothing sent"
    sent = sum(report.delivered.values())
    failed = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
    return f"sent {sent} record(s); {report.pending_segments} segment(s) still waiting" + (
        f"; failed: {failed}" if failed else ""
    )
