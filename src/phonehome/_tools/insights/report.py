"""The answers, gathered into one report with stable keys (``--json``; docs/insights.md).

A command run's ``command.result`` is taken as it comes: ``success``, ``usage_error`` and
``cancelled`` are counted by name, every other result (``failure``, and whatever a later
version adds) is a failure; ``results`` keeps each value's own count.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from phonehome._tools.insights import questions as q
from phonehome._tools.insights.engines import Engine, EngineError

NOT_FAILURES = frozenset(("success", "usage_error", "cancelled"))
TOP_ERRORS = 10


class NoData(Exception):
    """Nothing to report (unknown product, or nothing in the range); one line for people."""


def iso(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def day(r: q.Range, index: int) -> str:
    return iso(r.since + index * q.DAY)[:10]


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def build(engine: Engine, r: q.Range, funnel: Sequence[str] = ()) -> dict[str, Any]:
    """Every answer for ``r`` from ``engine``; :class:`NoData` when there is nothing."""
    if r.since >= r.until:
        raise NoData(f"--since {iso(r.since)} is not before --until {iso(r.until)}")
    d = engine.dialect
    known = sorted(str(row[0]) for row in engine.rows(q.products(d)))
    if r.product not in known:
        listed = ", ".join(known[:10]) or "none"
        raise NoData(f"--product {r.product}: no telemetry for it here (products: {listed})")
    for name, relation, keep in q.RELATIONS:
        engine.relation(name, relation(d, r), keep)

    def ask(question: Any) -> list[tuple[Any, ...]]:
        return engine.rows(question(d, r))

    report: dict[str, Any] = {
        "product": r.product,
        "engine": d.name,
        "since": iso(r.since),
        "until": iso(r.until),
        "installs": _installs(ask(q.installs)),
        "commands": _commands(ask(q.command_table), ask(q.results_by("command"))),
    }
    delivered = ask(q.delivered)[0]
    if not report["commands"] and not delivered[1] and not report["installs"]["total"]:
        raise NoData(
            f"--product {r.product}: nothing between {report['since']} and {report['until']}"
        )
    report["failures_by_version"] = _by("version", ask(q.results_by("version")))
    report["failures_by_os"] = _by("os", ask(q.results_by("os")))
    report["versions"] = _mix("version", ask(q.installs_by("version")), with_first=True)
    report["adoption"] = _adoption(r, ask(q.adoption))
    report["platforms"] = {
        column: _mix("value", ask(q.installs_by(column))) for column in ("os", "arch", "python")
    }
    report["runners"] = _runners(ask(q.runners))
    report["errors"] = _errors(ask(q.errors))
    report["events"] = [
        {"name": str(n), "count": int(c), "installs": int(i)} for n, c, i in ask(q.event_table)
    ]
    if funnel:
        report["funnel"] = _funnel(tuple(funnel), ask(q.funnel_rows(tuple(funnel))))
    report["retention"] = _retention(r, ask(q.active_weeks))
    report["daily"] = _daily(r, ask(q.daily_runs), ask(q.daily_installs))
    report["data_loss"] = _loss(ask(q.dropped), delivered)
    return report


def _installs(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    total, *active, new = (int(v or 0) for v in rows[0])
    found = {"total": total, "new": new}
    found.update({f"active_{days}d": n for days, n in zip(q.ACTIVE_DAYS, active, strict=True)})
    return found


def _results(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, int]]:
    by: dict[str, dict[str, int]] = defaultdict(dict)
    for key, result, count in rows:
        by[str(key)][str(result)] = int(count)
    return by


def _counts(results: dict[str, int]) -> dict[str, Any]:
    runs = sum(results.values())
    failures = sum(n for result, n in results.items() if result not in NOT_FAILURES)
    usage = results.get("usage_error", 0)
    return {
        "runs": runs,
        "failures": failures,
        "usage_errors": usage,
        "failure_rate": _rate(failures, runs),
        "usage_error_rate": _rate(usage, runs),
        "results": dict(sorted(results.items())),
    }


def _commands(table: list[tuple[Any, ...]], results: list[tuple[Any, ...]]) -> list[Any]:
    by = _results(results)
    found = []
    for name, _runs, installs, p50, p95 in table:
        found.append(
            {
                "name": str(name),
                **_counts(by[str(name)]),
                "installs": int(installs),
                "p50_ms": round(int(p50) / 1e6, 3),
                "p95_ms": round(int(p95) / 1e6, 3),
            }
        )
    return found


def _by(key: str, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [{key: value, **_counts(results)} for value, results in _results(rows).items()]


def _mix(key: str, rows: list[tuple[Any, ...]], with_first: bool = False) -> list[Any]:
    found = []
    for value, installs, runs, first in rows:
        item: dict[str, Any] = {key: str(value), "installs": int(installs), "runs": int(runs)}
        if with_first:
            item["first_seen"] = iso(int(first))
        found.append(item)
    return sorted(found, key=lambda i: (-i["installs"], i[key]))


def _adoption(r: q.Range, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    days: dict[int, dict[str, int]] = defaultdict(dict)
    for index, version, installs in rows:
        days[int(index)][str(version)] = int(installs)
    return [{"day": day(r, i), "versions": dict(sorted(days[i].items()))} for i in sorted(days)]


def _runners(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    total = sum(int(n) for _, _, n in rows)
    found: dict[str, dict[str, Any]] = {}
    for runner, who, runs in rows:
        item = found.setdefault(str(runner), {"runner": str(runner), "runs": 0, "who": {}})
        item["runs"] += int(runs)
        if who:
            item["who"][str(who)] = int(runs)
    for item in found.values():
        item["share"] = _rate(item["runs"], total)
    return sorted(found.values(), key=lambda i: ("human", "ci", "agent").index(i["runner"]))


def _errors(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for error, command, count in rows:
        item = found.setdefault(str(error), {"type": str(error), "count": 0, "commands": {}})
        item["count"] += int(count)
        item["commands"][str(command)] = int(count)
    return sorted(found.values(), key=lambda i: (-i["count"], i["type"]))[:TOP_ERRORS]


def _funnel(steps: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Installs reaching each step in order: step k after their first step k-1 (or at it)."""
    by: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for install, event, at in rows:
        by[str(install)].append((int(at), str(event)))
    reached = [0] * len(steps)
    for seen in by.values():
        step, since = 0, -1
        for at, event in sorted(seen):
            if step < len(steps) and event == steps[step] and at >= since:
                reached[step] += 1
                step, since = step + 1, at
    first = reached[0] if reached else 0
    return [
        {"step": name, "installs": n, "share": _rate(n, first)}
        for name, n in zip(steps, reached, strict=True)
    ]


def _retention(r: q.Range, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    cohorts: dict[int, dict[int, int]] = defaultdict(dict)
    for cohort, week, installs in rows:
        cohorts[int(cohort)][int(week) - int(cohort)] = int(installs)
    found = []
    for cohort in sorted(cohorts):
        weeks = cohorts[cohort]
        span = max(weeks) + 1
        counts = [weeks.get(k, 0) for k in range(span)]
        found.append(
            {"cohort": iso(r.since + cohort * q.WEEK)[:10], "installs": counts[0], "weeks": counts}
        )
    return found


def _daily(
    r: q.Range, runs: list[tuple[Any, ...]], installs: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    ran = {int(i): int(n) for i, n in runs}
    active = {int(i): int(n) for i, n in installs}
    days = (r.until - r.since + q.DAY - 1) // q.DAY
    return [
        {"day": day(r, i), "runs": ran.get(i, 0), "installs": active.get(i, 0)}
        for i in range(min(days, 366))
    ]


def _loss(rows: list[tuple[Any, ...]], delivered: tuple[Any, ...]) -> dict[str, Any]:
    dropped = {str(reason): int(count) for reason, count in rows}
    total = sum(dropped.values())
    arrived = int(delivered[0]) + int(delivered[1])
    return {
        "dropped": dropped,
        "dropped_total": total,
        "delivered": arrived,
        "missing_share": _rate(total, total + arrived),
    }


__all__ = ["EngineError", "NoData", "build", "iso"]
