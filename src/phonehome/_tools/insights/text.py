"""The terminal report: tables, and sparklines for the trends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BARS = "▁▂▃▄▅▆▇█"


WIDTH = 56


def sparkline(values: Sequence[float], width: int = WIDTH) -> str:
    """One bar per value; longer series are squeezed to ``width`` bars (each the largest)."""
    if len(values) > width:
        size = -(-len(values) // width)
        values = [max(values[i : i + size]) for i in range(0, len(values), size)]
    top = max(values, default=0)
    if top <= 0:
        return BARS[0] * len(values)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in values)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[str(c) for c in header], *[[_cell(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for index, row in enumerate(cells):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines if rows else [*lines[:2], "  (none)"]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1 else f"{value:.1f}"
    return str(value)


def _pct(value: float) -> str:
    return f"{value:.1%}"


def render(report: dict[str, Any]) -> str:
    installs = report["installs"]
    daily = report["daily"]
    lines = [
        f"{report['product']}: {report['since']} to {report['until']} ({report['engine']})",
        "",
        "Installs (human runs)",
        f"  total {installs['total']}, new {installs['new']}, active: last day "
        f"{installs['active_1d']}, 7 days {installs['active_7d']}, "
        f"28 days {installs['active_28d']}",
        f"  runs per day      {sparkline([d['runs'] for d in daily])}",
        f"  installs per day  {sparkline([d['installs'] for d in daily])}",
        "",
        "Commands",
        *table(
            ("command", "runs", "installs", "failures", "usage errors", "p50 ms", "p95 ms"),
            [
                (
                    c["name"],
                    c["runs"],
                    c["installs"],
                    f"{c['failures']} ({_pct(c['failure_rate'])})",
                    f"{c['usage_errors']} ({_pct(c['usage_error_rate'])})",
                    f"{c['p50_ms']:.1f}",
                    f"{c['p95_ms']:.1f}",
                )
                for c in report["commands"]
            ],
        ),
        "",
        "Failure rate by version",
        *table(
            ("version", "runs", "failures", "rate"),
            [
                (v["version"], v["runs"], v["failures"], _pct(v["failure_rate"]))
                for v in report["failures_by_version"]
            ],
        ),
        "",
        "Failure rate by OS",
        *table(
            ("os", "runs", "failures", "rate"),
            [
                (v["os"], v["runs"], v["failures"], _pct(v["failure_rate"]))
                for v in report["failures_by_os"]
            ],
        ),
        "",
        "Versions",
        *_versions(report),
        "",
        "Platforms (installs)",
        *[
            f"  {name:<7} " + ", ".join(f"{i['value']} {i['installs']}" for i in items)
            for name, items in report["platforms"].items()
        ],
        "",
        "Who runs it",
        *table(
            ("runner", "runs", "share", "detail"),
            [
                (
                    r["runner"],
                    r["runs"],
                    _pct(r["share"]),
                    ", ".join(f"{k} {v}" for k, v in r["who"].items()) or "-",
                )
                for r in report["runners"]
            ],
        ),
        "",
        "Top error types",
        *table(
            ("error.type", "count", "commands"),
            [(e["type"], e["count"], ", ".join(e["commands"])) for e in report["errors"]],
        ),
        "",
        "Events",
        *table(
            ("event", "count", "installs"),
            [(e["name"], e["count"], e["installs"]) for e in report["events"]],
        ),
        *_funnel(report),
        "",
        "Weekly retention (installs by first week, active in each week after)",
        *table(
            ("cohort", "installs", "weeks 0, 1, 2, ..."),
            [
                (c["cohort"], c["installs"], " ".join(str(n) for n in c["weeks"]))
                for c in report["retention"]
            ],
        ),
        "",
        "Data loss",
        *_loss(report["data_loss"]),
    ]
    return "\n".join(lines) + "\n"


def _versions(report: dict[str, Any]) -> list[str]:
    adoption = report["adoption"]
    lines = []
    for item in report["versions"]:
        version = item["version"]
        shares = [
            d["versions"].get(version, 0) / max(1, sum(d["versions"].values())) for d in adoption
        ]
        lines.append(
            f"  {version:<10} {item['installs']:>6} installs  first seen {item['first_seen'][:10]}"
            f"  share per day {sparkline(shares)}"
        )
    return lines or ["  (none)"]


def _funnel(report: dict[str, Any]) -> list[str]:
    if "funnel" not in report:
        return []
    return [
        "",
        "Funnel",
        *table(
            ("step", "installs", "of the first"),
            [(s["step"], s["installs"], _pct(s["share"])) for s in report["funnel"]],
        ),
    ]


def _loss(loss: dict[str, Any]) -> list[str]:
    reasons = ", ".join(f"{k} {v}" for k, v in loss["dropped"].items()) or "none reported"
    return [
        f"  delivered {loss['delivered']} spans and records; dropped before delivery "
        f"{loss['dropped_total']} ({reasons}): {_pct(loss['missing_share'])} missing"
    ]
