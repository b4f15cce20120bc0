"""Every question, written once over the exporter's tables, for both engines.

The relations (``RELATIONS``) read the tables once: command spans, event records, their union
as activity, and each install's first appearance. Deliveries are at least once, so each
relation keeps one row per span (``TraceId``, ``SpanId``) or per record (time, session, name,
body): a resent batch changes no figure. Installs are counted over human runs: a CI or agent
run has no lasting install id. Questions refer to relations as ``{commands}``; an engine puts
a temporary table or a sub-query there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phonehome._core.environment import AGENT_VARIABLES
from phonehome._tools.insights.dialect import Dialect

DAY = 86_400 * 10**9
WEEK = 7 * DAY
ACTIVE_DAYS = (1, 7, 28)


@dataclass(frozen=True)
class Range:
    """What to look at: one product, from ``since`` (included) to ``until`` (excluded), in ns."""

    product: str
    since: int
    until: int

    @property
    def start(self) -> int:
        """Where the relations begin: early enough for "active in the last 28 days"."""
        return min(self.since, self.until - max(ACTIVE_DAYS) * DAY)


def _runner(d: Dialect) -> str:
    agents = ", ".join(d.text(name) for _, name in AGENT_VARIABLES)
    collapsed = ", ".join(d.text(f"automation-{name}") for _, name in AGENT_VARIABLES)
    return (
        f"CASE WHEN automation IN ({agents}) OR install IN ({collapsed}) THEN 'agent' "
        "WHEN automation != '' OR install LIKE 'automation-%' THEN 'ci' ELSE 'human' END"
    )


def _resource(d: Dialect) -> str:
    r = "ResourceAttributes"
    return (
        f"{d.attr(r, 'device.id')} AS install, {d.attr(r, 'service.version')} AS version, "
        f"{d.attr(r, 'os.type')} AS os, {d.attr(r, 'host.arch')} AS arch, "
        f"{d.attr(r, 'process.runtime.version')} AS python, "
        f"{d.attr(r, 'phonehome.automation')} AS automation"
    )


def _where(d: Dialect, r: Range, start: int | None = None) -> str:
    begin = r.start if start is None else start
    return (
        f"ServiceName = {d.text(r.product)} AND Timestamp >= {d.time(begin)} "
        f"AND Timestamp < {d.time(r.until)}"
    )


SPAN_COLUMNS = (
    "TraceId, SpanId, ServiceName, Timestamp, seen, duration, install, version, os, arch, "
    "python, automation, command, result, error"
)


def spans(d: Dialect, source: str = "otel_traces") -> str:
    """Every span with the attributes the questions read, taken out of the maps once.

    On ClickHouse a sub-query; the embedded store keeps it as a table, ``phonehome_spans``,
    filled by the same definition in the transaction that stores each batch (as a ClickHouse
    materialized view would be).
    """
    s = "SpanAttributes"
    return (
        f"SELECT TraceId, SpanId, ServiceName, Timestamp, {d.ns('Timestamp')} AS seen, "
        f"Duration AS duration, {_resource(d)}, {d.attr(s, 'command.name')} AS command, "
        f"{d.attr(s, 'command.result')} AS result, {d.attr(s, 'error.type')} AS error "
        f"FROM {source}"
    )


def repeated(d: Dialect, r: Range) -> str:
    """The span ids that arrived more than once (a handful: resends). Two spans of different
    traces sharing an id only both take the slower, exact way in ``commands``."""
    return (
        f"SELECT SpanId AS id FROM {{spans}} WHERE {_where(d, r)} "
        "GROUP BY SpanId HAVING count(*) > 1"
    )


def commands(d: Dialect, r: Range) -> str:
    """Command runs, one row per span: the spans delivered once as they are, the repeated
    ones made distinct (cheaper than a DISTINCT over a million rows of every column)."""
    names = "seen, duration, install, version, os, arch, python, automation, command, result, error"
    where = f"{_where(d, r)} AND command != ''"
    once = (
        f"SELECT {names} FROM {{spans}} WHERE {where} "
        "AND SpanId NOT IN (SELECT id FROM {repeated})"
    )
    again = (
        f"SELECT {names} FROM (SELECT DISTINCT {SPAN_COLUMNS} FROM {{spans}} "
        f"WHERE {where} AND SpanId IN (SELECT id FROM {{repeated}})) AS x"
    )
    return f"SELECT *, {_runner(d)} AS runner FROM ({once} UNION ALL {again}) AS c"


def events(d: Dialect, r: Range) -> str:
    inner = (
        f"SELECT DISTINCT {d.ns('Timestamp')} AS seen, "
        f"{d.attr('ResourceAttributes', 'service.instance.id')} AS session, {_resource(d)}, "
        f"{d.attr('LogAttributes', 'event.name')} AS event, Body AS body "
        f"FROM otel_logs WHERE {_where(d, r)} AND {d.attr('LogAttributes', 'event.name')} != ''"
    )
    return f"SELECT *, {_runner(d)} AS runner FROM ({inner}) AS e"


_ACTIVITY_COLUMNS = "install, seen, runner, version, os, arch, python"


def activity(d: Dialect, r: Range) -> str:
    return (
        f"SELECT {_ACTIVITY_COLUMNS} FROM {{commands}} "
        f"UNION ALL SELECT {_ACTIVITY_COLUMNS} FROM {{events}}"
    )


def firsts(d: Dialect, r: Range) -> str:
    """Each human install's first appearance over all the data before ``until``: from
    ``activity`` since ``start``, and from the tables before it (a scan of older data only)."""
    device = d.attr("ResourceAttributes", "device.id")
    automation = d.attr("ResourceAttributes", "phonehome.automation")
    older = f"ServiceName = {d.text(r.product)} AND Timestamp < {d.time(r.start)}"
    return (
        "SELECT install, min(seen) AS first FROM ("
        "SELECT install, seen FROM {activity} WHERE runner = 'human' AND install != '' "
        "UNION ALL SELECT install, seen FROM {spans} "
        f"WHERE {older} AND automation = '' AND install != '' AND install NOT LIKE 'automation-%' "
        f"UNION ALL SELECT {device} AS install, {d.ns('Timestamp')} AS seen FROM otel_logs "
        f"WHERE {older} AND {automation} = '' AND {device} != '' "
        f"AND {device} NOT LIKE 'automation-%') AS a GROUP BY install"
    )


def days(d: Dialect, r: Range) -> str:
    """Each human install's days of activity in the range (counted from ``since``), by version."""
    day = d.div(f"seen - {r.since}", DAY)
    return (
        f"SELECT DISTINCT {day} AS day, install, version FROM {{activity}} "
        f"WHERE runner = 'human' AND seen >= {r.since}"
    )


def profiles(d: Dialect, r: Range) -> str:
    """Each human install's versions and platforms in the range, with its runs."""
    return (
        "SELECT install, version, os, arch, python, count(*) AS runs, min(seen) AS first_seen "
        f"FROM {{activity}} WHERE runner = 'human' AND seen >= {r.since} "
        "GROUP BY install, version, os, arch, python"
    )


RELATIONS: tuple[tuple[str, Callable[[Dialect, Range], str], bool], ...] = (
    ("spans", lambda d, r: spans(d), False),
    ("repeated", repeated, True),
    ("commands", commands, True),
    ("events", events, True),
    ("activity", activity, False),
    ("firsts", firsts, True),
    ("days", days, True),
    ("profiles", profiles, True),
)
"""In order (a relation may use the ones before it), and whether the embedded store keeps it
as a table for the run (``activity`` is only a union of two that are; ``spans`` is kept by the
store itself)."""


# -- the questions ----------------------------------------------------------------------------


def products(d: Dialect) -> str:
    return (
        "SELECT DISTINCT ServiceName FROM otel_traces UNION DISTINCT "
        "SELECT DISTINCT ServiceName FROM otel_logs"
    )


def installs(d: Dialect, r: Range) -> str:
    windows = ", ".join(
        f"count(DISTINCT CASE WHEN seen >= {r.until - days * DAY} THEN install END)"
        for days in ACTIVE_DAYS
    )
    return (
        f"SELECT count(DISTINCT CASE WHEN seen >= {r.since} THEN install END), {windows}, "
        f"(SELECT count(*) FROM {{firsts}} WHERE first >= {r.since}) "
        "FROM {activity} WHERE runner = 'human'"
    )


def command_table(d: Dialect, r: Range) -> str:
    return (
        "SELECT command, count(*) AS runs, "
        "count(DISTINCT CASE WHEN runner = 'human' THEN install END), "
        f"{d.percentile(0.5, 'duration')}, {d.percentile(0.95, 'duration')} "
        f"FROM {{commands}} WHERE seen >= {r.since} GROUP BY command ORDER BY runs DESC, command"
    )


def results_by(column: str) -> Callable[[Dialect, Range], str]:
    """Runs by ``column`` and result, every result value as it comes (success, failure, ...)."""

    def question(d: Dialect, r: Range) -> str:
        return (
            f"SELECT {column}, result, count(*) FROM {{commands}} WHERE seen >= {r.since} "
            f"GROUP BY {column}, result ORDER BY {column}, result"
        )

    return question


def installs_by(column: str) -> Callable[[Dialect, Range], str]:
    """Human installs by ``column`` (version, os, arch, python), with their runs."""

    def question(d: Dialect, r: Range) -> str:
        return (
            f"SELECT {column}, count(DISTINCT install), sum(runs), min(first_seen) "
            f"FROM {{profiles}} GROUP BY {column} ORDER BY {column}"
        )

    return question


def adoption(d: Dialect, r: Range) -> str:
    """Human installs seen per day and version."""
    return (
        "SELECT day, version, count(DISTINCT install) FROM {days} "
        "GROUP BY day, version ORDER BY day, version"
    )


def daily_runs(d: Dialect, r: Range) -> str:
    """Command runs per day (every runner)."""
    day = d.div(f"seen - {r.since}", DAY)
    return (
        f"SELECT {day} AS day, count(*) FROM {{commands}} WHERE seen >= {r.since} "
        "GROUP BY day ORDER BY day"
    )


def daily_installs(d: Dialect, r: Range) -> str:
    """Active human installs per day."""
    return "SELECT day, count(DISTINCT install) FROM {days} GROUP BY day ORDER BY day"


def runners(d: Dialect, r: Range) -> str:
    return (
        "SELECT runner, CASE WHEN runner = 'human' THEN '' ELSE automation END AS who, count(*) "
        f"FROM {{commands}} WHERE seen >= {r.since} GROUP BY runner, who ORDER BY runner, who"
    )


def errors(d: Dialect, r: Range) -> str:
    return (
        "SELECT error, command, count(*) FROM {commands} "
        f"WHERE seen >= {r.since} AND error != '' GROUP BY error, command ORDER BY error, command"
    )


def event_table(d: Dialect, r: Range) -> str:
    return (
        "SELECT event, count(*), count(DISTINCT CASE WHEN runner = 'human' THEN install END) "
        f"FROM {{events}} WHERE seen >= {r.since} GROUP BY event ORDER BY event"
    )


def funnel_rows(steps: tuple[str, ...]) -> Callable[[Dialect, Range], str]:
    def question(d: Dialect, r: Range) -> str:
        names = ", ".join(d.text(step) for step in steps) or "''"
        return (
            f"SELECT install, event, seen FROM {{events}} WHERE seen >= {r.since} "
            f"AND runner = 'human' AND event IN ({names}) ORDER BY install, seen, event"
        )

    return question


def active_weeks(d: Dialect, r: Range) -> str:
    """Installs by first week (counted from ``since``) and by each week they were active."""
    week = d.div("a.day", 7)
    first = d.div(f"f.first - {r.since}", WEEK)
    return (
        f"SELECT {first} AS cohort, {week} AS week, count(DISTINCT a.install) "
        "FROM {days} AS a JOIN {firsts} AS f ON a.install = f.install "
        f"WHERE f.first >= {r.since} GROUP BY cohort, week ORDER BY cohort, week"
    )


def dropped(d: Dialect, r: Range) -> str:
    """``phonehome.spool.dropped`` by reason; one report counted once however often resent
    (a report is its sender's resource, reason and count)."""
    resource = ", ".join(
        d.attr("ResourceAttributes", key) for key in ("service.instance.id", "device.id")
    )
    inner = (
        f"SELECT DISTINCT {resource}, {d.attr('Attributes', 'reason')} AS reason, Value "
        f"FROM otel_metrics_sum WHERE ServiceName = {d.text(r.product)} "
        f"AND MetricName = 'phonehome.spool.dropped' AND TimeUnix >= {d.time(r.since)} "
        f"AND TimeUnix < {d.time(r.until)}"
    )
    return f"SELECT reason, sum(Value) FROM ({inner}) AS x GROUP BY reason ORDER BY reason"


def delivered(d: Dialect, r: Range) -> str:
    """Spans and log records that arrived in the range, each once: the command spans are
    counted already; the others (nested spans) are few."""
    spans = (
        f"SELECT DISTINCT TraceId, SpanId FROM {{spans}} WHERE {_where(d, r, r.since)} "
        "AND command = ''"
    )
    logs = (
        f"SELECT DISTINCT Timestamp, {d.attr('ResourceAttributes', 'service.instance.id')} AS s,"
        f" Body FROM otel_logs WHERE {_where(d, r, r.since)}"
    )
    return (
        f"SELECT (SELECT count(*) FROM {{commands}} WHERE seen >= {r.since}) + "
        f"(SELECT count(*) FROM ({spans}) AS x), (SELECT count(*) FROM ({logs}) AS y)"
    )
