"""The few SQL expressions that DuckDB and ClickHouse spell differently.

Every question is written once (``questions``) in the SQL both engines accept, and calls
these for the rest: reading an attribute, a time as nanoseconds, integer division, string
literals and the nearest-rank percentile.
"""

from __future__ import annotations


class DuckDB:
    name = "duckdb"

    @staticmethod
    def attr(column: str, key: str) -> str:
        """An attribute's value, ``''`` when absent (ClickHouse's own answer)."""
        return f"coalesce({column}[{DuckDB.text(key)}], '')"

    @staticmethod
    def ns(column: str) -> str:
        return f"epoch_ns({column})"

    @staticmethod
    def time(ns: int) -> str:
        return f"make_timestamp_ns({int(ns)})"

    @staticmethod
    def div(a: str, b: int) -> str:
        return f"(({a}) // {int(b)})"

    @staticmethod
    def text(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    @staticmethod
    def percentile(q: float, column: str) -> str:
        """Nearest rank: the smallest value with at least ``q`` of the values at or below."""
        return f"quantile_disc({column}, {float(q)!r})"


class ClickHouse:
    name = "clickhouse"

    @staticmethod
    def attr(column: str, key: str) -> str:
        return f"{column}[{ClickHouse.text(key)}]"

    @staticmethod
    def ns(column: str) -> str:
        return f"toUnixTimestamp64Nano({column})"

    @staticmethod
    def time(ns: int) -> str:
        return f"fromUnixTimestamp64Nano(toInt64({int(ns)}))"

    @staticmethod
    def div(a: str, b: int) -> str:
        return f"intDiv({a}, {int(b)})"

    @staticmethod
    def text(value: str) -> str:
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"

    @staticmethod
    def percentile(q: float, column: str) -> str:
        rank = f"toUInt64(greatest(1, ceil({float(q)!r} * count())))"
        return f"arrayElement(arraySort(groupArray({column})), {rank})"


Dialect = type[DuckDB] | type[ClickHouse]
