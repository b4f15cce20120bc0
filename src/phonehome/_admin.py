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

from phonehome import _environment as env
from phonehome._consent import Resolver, level


def _config(state_dir: Path) -> dict[str, Any]:
    from phonehome._sender import load_config

    return load_config(state_dir) or {}


def state_dir(product: str, override: str | os.PathLike[str] | None = None) -> Path:
    from phonehome._state import state_dir as locate

    return locate(product, override)


def resolver(product: str, directory: Path) -> Resolver:
    config = _config(directory)
    return Resolver(
        env.prefix_for(product),
        config.get("consent", "opt-out"),
        config.get("enabled"),
        directory,
        str(config.get("automation", "tag")),
    )


def status(product: str, directory: Path) -> list[tuple[str, str]]:
    """The decision and who made it, the level, destinations (masked), where state lives."""
    from phonehome._consent import automation
    from phonehome._delivery import _resolve_mode
    from phonehome._sender import REPORT_FILE, _destination
    from phonehome._spool import Spool

    prefix = env.prefix_for(product)
    config = _config(directory)
    decision = resolver(product, directory).resolve()
    rows = [
        ("telemetry", f"{'on' if decision.enabled else 'off'}, decided by {decision.detail}"),
        ("level", level(os.environ, prefix)),
        ("delivery", _resolve_mode("auto", prefix)),
    ]
    who = automation(os.environ)
    if who:
        rows.append(("automation", f"{who} (policy: {config.get('automation', 'tag')})"))
    destinations = config.get("destinations", {})
    if not destinations:
        rows.append(("destinations", "none recorded yet (the product has not run with consent)"))
    for entry in destinations.values():
        try:
            described = _destination(entry).describe()
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
    resolver(product, directory).store_choice(enabled)
    if not enabled:
        from phonehome._spool import Spool

        Spool(directory / "spool").purge()


def reset_id(directory: Path) -> None:
    from phonehome._identity import forget

    forget(directory)


def preview(directory: Path) -> dict[str, Any]:
    """What is waiting to be sent (as it will be sent: scrubbed) and what was sent."""
    from phonehome._ledger import entries
    from phonehome._scrub import Scrubber
    from phonehome._spool import Spool

    spool = Spool(directory / "spool")
    scrub = Scrubber()
    exempt = set(_config(directory).get("scrub_exempt", ()))
    waiting: list[dict[str, Any]] = []
    for name in spool.names():
        segment = spool.read(name)
        if segment is None:
            continue
        for record in segment.records:
            waiting.append(_describe(record, scrub, exempt))
    return {"waiting": waiting, "sent": entries(directory)}


def _describe(record: Any, scrub: Any, exempt: set[str]) -> dict[str, Any]:
    kind = record[0]
    if kind == "s":
        return {"span": scrub(record[4]), "attributes": scrub.attributes(record[7], exempt)}
    if kind == "l":
        return {
            "log": record[6] or scrub.value(record[4]),
            "attributes": scrub.attributes(record[5], exempt),
        }
    return {
        "metric": record[2],
        "value": record[5],
        "attributes": scrub.attributes(record[6], exempt),
    }


def flush(directory: Path, budget: float) -> str:
    """Deliver what is waiting now, in this process."""
    from phonehome._sender import deliver

    report = deliver(directory, budget)
    if report is None:
        return "a sender is already delivering for this product"
    if report.purged:
        return f"consent is off: {report.purged} waiting segment(s) purged, nothing sent"
    sent = sum(report.delivered.values())
    failed = "; ".join(f"{k}: {v}" for k, v in report.failed.items())
    return f"sent {sent} record(s); {report.pending_segments} segment(s) still waiting" + (
        f"; failed: {failed}" if failed else ""
    )
