"""``--html FILE``: one self-contained page (inline CSS and SVG charts, no script, no fetch)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

_COLOURS = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477")
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{padding:.2em .7em;text-align:right}
th{border-bottom:1px solid #999}td:first-child,th:first-child{text-align:left}
.figures span{display:inline-block;margin-right:2em}.figures b{font-size:1.6em;display:block}
svg{display:block;margin:.5em 0 1.5em}
"""


def bars(values: Sequence[float], labels: Sequence[str], title: str) -> str:
    """A bar chart, one bar per value."""
    width, height = 720, 140
    top = max(values, default=0) or 1
    step = width / max(1, len(values))
    shapes = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = value / top * (height - 20)
        shapes.append(
            f'<rect x="{i * step + 1:.1f}" y="{height - h:.1f}" width="{max(1, step - 2):.1f}" '
            f'height="{h:.1f}" fill="{_COLOURS[0]}">'
            f"<title>{escape(label)}: {value:g}</title></rect>"
        )
    return _svg(width, height, title, shapes)


def stacked(series: dict[str, Sequence[float]], labels: Sequence[str], title: str) -> str:
    """Shares per column, stacked to 100% (version adoption)."""
    width, height = 720, 160
    count = len(labels)
    step = width / max(1, count)
    shapes = []
    for i in range(count):
        total = sum(values[i] for values in series.values()) or 1
        y = float(height)
        for n, (name, values) in enumerate(series.items()):
            h = values[i] / total * height
            y -= h
            shapes.append(
                f'<rect x="{i * step:.1f}" y="{y:.1f}" width="{step:.1f}" height="{h:.1f}" '
                f'fill="{_COLOURS[n % len(_COLOURS)]}"><title>{escape(labels[i])} '
                f"{escape(name)}: {values[i]:g}</title></rect>"
            )
    legend = " ".join(
        f'<span style="color:{_COLOURS[n % len(_COLOURS)]}">■ {escape(name)}</span>'
        for n, name in enumerate(series)
    )
    return _svg(width, height, title, shapes) + f"<p>{legend}</p>"


def _svg(width: int, height: int, title: str, shapes: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect width="{width}" height="{height}" fill="#f7f7f7"/>{"".join(shapes)}</svg>'
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body or '<tr><td>(none)</td></tr>'}</table>"


def _cell(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, float) and value <= 1 else str(value)


def render(report: dict[str, Any]) -> str:
    installs, daily = report["installs"], report["daily"]
    days = [d["day"] for d in daily]
    versions = [v["version"] for v in report["versions"]]
    adoption = {d["day"]: d["versions"] for d in report["adoption"]}
    series: dict[str, Sequence[float]] = {
        v: [adoption.get(day, {}).get(v, 0) for day in days] for v in versions
    }
    figures = "".join(
        f"<span><b>{installs[key]}</b>{label}</span>"
        for key, label in (
            ("total", "installs"),
            ("new", "new"),
            ("active_1d", "active, last day"),
            ("active_7d", "active, 7 days"),
            ("active_28d", "active, 28 days"),
        )
    )
    loss = report["data_loss"]
    parts = [
        f"<h1>{escape(report['product'])}</h1>",
        f"<p>{escape(report['since'])} to {escape(report['until'])} ({report['engine']})</p>",
        f'<div class="figures">{figures}</div>',
        "<h2>Runs per day</h2>",
        bars([d["runs"] for d in daily], days, "runs per day"),
        "<h2>Active installs per day</h2>",
        bars([d["installs"] for d in daily], days, "active installs per day"),
        "<h2>Commands</h2>",
        _table(
            ("command", "runs", "installs", "failure rate", "usage errors", "p50 ms", "p95 ms"),
            [
                (
                    c["name"],
                    c["runs"],
                    c["installs"],
                    c["failure_rate"],
                    c["usage_error_rate"],
                    f"{c['p50_ms']:.1f}",  # milliseconds: not a share
                    f"{c['p95_ms']:.1f}",
                )
                for c in report["commands"]
            ],
        ),
        "<h2>Version adoption (share of active installs per day)</h2>",
        stacked(series, days, "version adoption"),
        "<h2>Failure rate by version</h2>",
        _table(
            ("version", "runs", "failure rate"),
            [(v["version"], v["runs"], v["failure_rate"]) for v in report["failures_by_version"]],
        ),
        "<h2>Failure rate by OS</h2>",
        _table(
            ("os", "runs", "failure rate"),
            [(v["os"], v["runs"], v["failure_rate"]) for v in report["failures_by_os"]],
        ),
        "<h2>Platforms</h2>",
        *(
            _table((name, "installs"), [(i["value"], i["installs"]) for i in items])
            for name, items in report["platforms"].items()
        ),
        "<h2>Who runs it</h2>",
        _table(
            ("runner", "runs", "share"),
            [(r["runner"], r["runs"], r["share"]) for r in report["runners"]],
        ),
        "<h2>Top error types</h2>",
        _table(("error.type", "count"), [(e["type"], e["count"]) for e in report["errors"]]),
        "<h2>Events</h2>",
        _table(
            ("event", "count", "installs"),
            [(e["name"], e["count"], e["installs"]) for e in report["events"]],
        ),
    ]
    if "funnel" in report:
        parts += [
            "<h2>Funnel</h2>",
            _table(
                ("step", "installs", "of the first"),
                [(s["step"], s["installs"], s["share"]) for s in report["funnel"]],
            ),
        ]
    parts += [
        "<h2>Weekly retention</h2>",
        _table(
            ("cohort", "installs", *(f"week {k}" for k in range(_weeks(report)))),
            [(c["cohort"], c["installs"], *c["weeks"]) for c in report["retention"]],
        ),
        "<h2>Data loss</h2>",
        f"<p>{loss['delivered']} spans and records delivered; {loss['dropped_total']} dropped "
        f"before delivery ({escape(_reasons(loss))}): "
        f"{loss['missing_share']:.1%} missing.</p>",
    ]
    title = escape(f"{report['product']}: insights")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def _reasons(loss: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in loss["dropped"].items()) or "none reported"


def _weeks(report: dict[str, Any]) -> int:
    return max((len(c["weeks"]) for c in report["retention"]), default=0)
