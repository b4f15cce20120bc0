"""The embedded store: one DuckDB file holding the ClickHouse exporter's tables.

DuckDB commits through its write-ahead log, so a request's rows survive the process being
killed as soon as ``insert`` returns. One process writes (the collector's store writer);
``insights`` opens the file read-only once the collector has stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phonehome._tools.insights import layout
from phonehome._tools.insights.otlp import Rows

MARKER = "phonehome_store"
"""A table naming the store's layout version: what tells a store from any DuckDB file."""
VERSION = 1


class StoreError(Exception):
    """The store cannot be opened or written; the message is one line for people."""


def duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise StoreError(
            "the embedded store needs DuckDB: pip install 'phonehome[insights]'"
        ) from None
    return duckdb


def _insert_sql(table: layout.Table) -> str:
    """One INSERT for a whole batch: every column passed as a list and unnested."""
    items = []
    for index, column in enumerate(table.columns, 1):
        kind = column.clickhouse
        if kind == "DateTime64(9)":
            items.append(f"make_timestamp_ns(unnest(${index}))")
        elif kind == "Array(DateTime64(9))":
            items.append(f"list_transform(unnest(${index}), lambda t: make_timestamp_ns(t))")
        elif kind.startswith("Map("):
            items.append(f"unnest(${index})::MAP(VARCHAR, VARCHAR)")
        elif kind.startswith("Array(Map("):
            items.append(f"unnest(${index})::MAP(VARCHAR, VARCHAR)[]")
        else:
            items.append(f"unnest(${index})")
    return f"INSERT INTO {table.name} SELECT {', '.join(items)}"


_INSERTS = {table.name: _insert_sql(table) for table in layout.TABLES}


class Store:
    """The store at ``path``, open for writing (created when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.connection = duckdb().connect(str(path))
        except Exception as error:
            raise StoreError(f"--store {path}: {_first_line(error)}") from None
        self.connection.execute("BEGIN")
        for table in layout.TABLES:
            self.connection.execute(layout.duckdb_ddl(table))
        self.connection.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (version INTEGER)")
        if not self.connection.execute(f"SELECT 1 FROM {MARKER}").fetchall():
            self.connection.execute(f"INSERT INTO {MARKER} VALUES ({VERSION})")
        self.connection.execute("COMMIT")

    def insert(self, rows: Rows) -> int:
        """Write every row of one request in one transaction; the count once committed."""
        count = 0
        self.connection.execute("BEGIN")
        try:
            for name, found in rows.items():
                if found:
                    columns = [list(values) for values in zip(*found, strict=True)]
                    self.connection.execute(_INSERTS[name], [_maps(c) for c in columns])
                    count += len(found)
            self.connection.execute("COMMIT")
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        return count

    def close(self) -> None:
        self.connection.close()


def _maps(column: list[Any]) -> list[Any]:
    """Dicts as DuckDB MAP literals ({'key': [...], 'value': [...]}), also inside lists."""
    if column and isinstance(column[0], dict):
        return [{"key": list(m), "value": list(m.values())} for m in column]
    if column and isinstance(column[0], list):
        return [
            [_map(m) for m in item] if item and isinstance(item[0], dict) else item
            for item in column
        ]
    return column


def _map(value: dict[str, str]) -> dict[str, list[str]]:
    return {"key": list(value), "value": list(value.values())}


def open_read_only(path: Path) -> Any:
    """A read-only connection to the store at ``path``, or a one-line :class:`StoreError`."""
    if not path.exists():
        raise StoreError(
            f"--store {path}: no such file (start one with phonehome collector --store)"
        )
    if path.is_dir():
        raise StoreError(f"--store {path}: a directory, not a store file")
    try:
        connection = duckdb().connect(str(path), read_only=True)
    except Exception as error:
        text = _first_line(error)
        if "lock" in text.lower():
            text = "in use by a running collector (stop it first, or query it with --clickhouse)"
        elif "not a valid" in text.lower() or "duckdb" in text.lower():
            text = "not a phonehome store (not a DuckDB file)"
        raise StoreError(f"--store {path}: {text}") from None
    found = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [MARKER]
    ).fetchall()
    if not found[0][0]:
        connection.close()
        raise StoreError(f"--store {path}: a DuckDB file, but not a phonehome store")
    return connection


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
