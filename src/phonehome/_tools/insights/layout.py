"""The OpenTelemetry Collector ClickHouse exporter's tables, defined once for both engines.

Columns, names and ClickHouse types are those of the contrib exporter (and of Rotel's
``clickhouse-ddl``): ``otel_traces``, ``otel_logs``, ``otel_metrics_sum``, ``otel_metrics_gauge``
and ``otel_metrics_histogram``. ClickHouse ``Nested`` columns are stored as it stores them, one
array per field (``Events.Name``). The embedded store (DuckDB) gets the same names with the
nearest types; ``clickhouse_ddl`` renders the server's tables, with TTL retention.
"""

from __future__ import annotations

from typing import NamedTuple

_MAP = "Map(LowCardinality(String), String)"
_TIME = "DateTime64(9)"
_LC = "LowCardinality(String)"


class Column(NamedTuple):
    name: str
    clickhouse: str


def _columns(spec: str) -> tuple[Column, ...]:
    pairs = (line.split(None, 1) for line in spec.splitlines() if line.strip())
    return tuple(Column(name, kind.strip()) for name, kind in pairs)


TRACES = _columns(f"""
Timestamp {_TIME}
TraceId String
SpanId String
ParentSpanId String
TraceState String
SpanName {_LC}
SpanKind {_LC}
ServiceName {_LC}
ResourceAttributes {_MAP}
ScopeName String
ScopeVersion String
SpanAttributes {_MAP}
Duration UInt64
StatusCode {_LC}
StatusMessage String
Events.Timestamp Array({_TIME})
Events.Name Array({_LC})
Events.Attributes Array({_MAP})
Links.TraceId Array(String)
Links.SpanId Array(String)
Links.TraceState Array(String)
Links.Attributes Array({_MAP})
""")

LOGS = _columns(f"""
Timestamp {_TIME}
TraceId String
SpanId String
TraceFlags UInt8
SeverityText {_LC}
SeverityNumber UInt8
ServiceName {_LC}
Body String
ResourceSchemaUrl {_LC}
ResourceAttributes {_MAP}
ScopeSchemaUrl {_LC}
ScopeName String
ScopeVersion {_LC}
ScopeAttributes {_MAP}
LogAttributes {_MAP}
""")

_METRIC_HEAD = f"""
ResourceAttributes {_MAP}
ResourceSchemaUrl String
ScopeName String
ScopeVersion String
ScopeAttributes {_MAP}
ScopeDroppedAttrCount UInt32
ScopeSchemaUrl String
ServiceName {_LC}
MetricName String
MetricDescription String
MetricUnit String
Attributes {_MAP}
StartTimeUnix {_TIME}
TimeUnix {_TIME}
"""
_EXEMPLARS = f"""
Exemplars.FilteredAttributes Array({_MAP})
Exemplars.TimeUnix Array({_TIME})
Exemplars.Value Array(Float64)
Exemplars.SpanId Array(String)
Exemplars.TraceId Array(String)
"""

SUMS = _columns(
    _METRIC_HEAD
    + "Value Float64\nFlags UInt32\n"
    + _EXEMPLARS
    + "AggregationTemporality Int32\nIsMonotonic Bool\n"
)
GAUGES = _columns(_METRIC_HEAD + "Value Float64\nFlags UInt32\n" + _EXEMPLARS)
HISTOGRAMS = _columns(
    _METRIC_HEAD
    + "Count UInt64\nSum Float64\nBucketCounts Array(UInt64)\nExplicitBounds Array(Float64)\n"
    + _EXEMPLARS
    + "Flags UInt32\nMin Float64\nMax Float64\nAggregationTemporality Int32\n"
)


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    time: str
    """The column that TTL retention and partitions go by."""
    order: str
    """The ClickHouse sort key (the exporter's)."""


TABLES = (
    Table("otel_traces", TRACES, "Timestamp", "(ServiceName, SpanName, toDateTime(Timestamp))"),
    Table("otel_logs", LOGS, "Timestamp", "(ServiceName, toDateTime(Timestamp), Timestamp)"),
    Table(
        "otel_metrics_sum",
        SUMS,
        "TimeUnix",
        "(ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))",
    ),
    Table(
        "otel_metrics_gauge",
        GAUGES,
        "TimeUnix",
        "(ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))",
    ),
    Table(
        "otel_metrics_histogram",
        HISTOGRAMS,
        "TimeUnix",
        "(ServiceName, MetricName, Attributes, toUnixTimestamp64Nano(TimeUnix))",
    ),
)
BY_NAME = {table.name: table for table in TABLES}

_DUCKDB_SCALARS = {
    _TIME: "TIMESTAMP_NS",
    "String": "VARCHAR",
    _LC: "VARCHAR",
    _MAP: "MAP(VARCHAR, VARCHAR)",
    "UInt64": "UBIGINT",
    "UInt32": "UINTEGER",
    "UInt8": "UTINYINT",
    "Int32": "INTEGER",
    "Float64": "DOUBLE",
    "Bool": "BOOLEAN",
}


def duckdb_type(clickhouse: str) -> str:
    """The embedded store's type for a ClickHouse column type."""
    if clickhouse.startswith("Array(") and clickhouse.endswith(")"):
        return duckdb_type(clickhouse[6:-1]) + "[]"
    return _DUCKDB_SCALARS[clickhouse]


def duckdb_ddl(table: Table) -> str:
    columns = ",\n  ".join(f'"{c.name}" {duckdb_type(c.clickhouse)}' for c in table.columns)
    return f"CREATE TABLE IF NOT EXISTS {table.name} (\n  {columns}\n)"


def clickhouse_ddl(table: Table, database: str = "otel", ttl_days: int | None = None) -> str:
    """The table on a ClickHouse server, as the exporter makes it, with TTL retention."""
    columns = ",\n  ".join(f"`{c.name}` {c.clickhouse} CODEC(ZSTD(1))" for c in table.columns)
    ttl = f"\nTTL toDateTime({table.time}) + toIntervalDay({ttl_days})" if ttl_days else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {database}.{table.name} (\n  {columns}\n)"
        f" ENGINE = MergeTree\nPARTITION BY toDate({table.time})\nORDER BY {table.order}{ttl}"
        "\nSETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"
    )


RETENTION_DAYS = 90
"""The TTL of collector-config/clickhouse/tables.sql (change it there to keep more or less)."""


def clickhouse_script(database: str = "otel", ttl_days: int = RETENTION_DAYS) -> str:
    """Every table, for a ClickHouse server: collector-config/clickhouse/tables.sql."""
    header = (
        "-- The OpenTelemetry Collector ClickHouse exporter's tables, with TTL retention, for\n"
        "-- the Rotel gateway (collector-config/rotel/gateway-clickhouse.env), which does not\n"
        "-- create tables. Generated by: python -m phonehome._tools.insights.layout FILE\n"
        f"-- Retention: {ttl_days} days (whole daily partitions are dropped).\n\n"
        f"CREATE DATABASE IF NOT EXISTS {database};\n"
    )
    tables = "".join(f"\n{clickhouse_ddl(t, database, ttl_days)};\n" for t in TABLES)
    return header + tables


if __name__ == "__main__":
    import sys
    from pathlib import Path

    Path(sys.argv[1]).write_text(clickhouse_script(), encoding="utf-8")
