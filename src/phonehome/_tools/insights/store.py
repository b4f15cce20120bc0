"""The embedded store: one DuckDB file holding the ClickHouse exporter's tables.

DuckDB commits through its write-ahead log, so a request's rows survive the process being
killed as soon as ``insert`` returns. One process writes (the collector's store writer);
``insights`` opens the file read-only once the collector has stopped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phonehome._tools.insights import dialect, layout
from phonehome._tools.insights.otlp import Rows
from phonehome._tools.insights.questions import spans

SPANS = "phonehome_spans"
"""The store's own table: ``questions.spans`` kept as the batches arrive."""
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


def _json_type(clickhouse: str) -> str:
    """How a column travels in the batch file: times as integers of nanoseconds."""
    if clickhouse == "DateTime64(9)":
        return "BIGINT"
    if clickhouse == "Array(DateTime64(9))":
        return "BIGINT[]"
    return layout.duckdb_type(clickhouse)


def _insert_sql(table: layout.Table) -> str:
    """One INSERT for a whole batch, read from a newline-delimited JSON file (DuckDB's
    fastest way in without pyarrow: about three times binding lists as parameters)."""
    items = []
    for index, column in enumerate(table.columns):
        name = f'"c{index}"'
        if column.clickhouse == "DateTime64(9)":
            items.append(f"make_timestamp_ns({name})")
        elif column.clickhouse == "Array(DateTime64(9))":
            items.append(f"list_transform({name}, lambda t: make_timestamp_ns(t))")
        else:
            items.append(name)
    types = ", ".join(
        f"'c{index}': '{_json_type(column.clickhouse)}'"
        for index, column in enumerate(table.columns)
    )
    return (
        f"INSERT INTO {table.name} SELECT {', '.join(items)} FROM read_json($path, "
        f"format = 'newline_delimited', columns = {{{types}}})"
    )


_INSERTS = {table.name: _insert_sql(table) for table in layout.TABLES}
_STAGE = _INSERTS["otel_traces"].replace("INSERT INTO otel_traces", "INSERT INTO staging", 1)


class Store:
    """The store at ``path``, open for writing (created when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.connection = duckdb().connect(str(path))
        except Exception as error:
            text = _first_line(error)
            if "not a valid" in text:
                text = "not a phonehome store (not a DuckDB file)"
            elif "lock" in text.lower():
                text = "in use by another process (a collector already writes it)"
            raise StoreError(f"--store {path}: {text.removeprefix('IO Error: ')}") from None
        self.connection.execute("SET enable_progress_bar = false")
        tables = {row[0] for row in self.connection.execute("SHOW TABLES").fetchall()}
        if tables and MARKER not in tables:
            self.connection.close()
            raise StoreError(f"--store {path}: a DuckDB file, but not a phonehome store")
        self.connection.execute("BEGIN")
        for table in layout.TABLES:
            self.connection.execute(layout.duckdb_ddl(table))
        extract = spans(dialect.DuckDB, "otel_traces")
        if SPANS not in tables:
            self.connection.execute(f"CREATE TABLE {SPANS} AS {extract}")  # with what is there
        self.connection.execute("CREATE TEMP TABLE staging AS SELECT * FROM otel_traces LIMIT 0")
        self._spans = (
            f"INSERT INTO otel_traces SELECT * FROM staging; "
            f"INSERT INTO {SPANS} {spans(dialect.DuckDB, 'staging')}; DELETE FROM staging"
        )
        self.connection.execute(f"CREATE TABLE IF NOT EXISTS {MARKER} (version INTEGER)")
        if not self.connection.execute(f"SELECT 1 FROM {MARKER}").fetchall():
            self.connection.execute(f"INSERT INTO {MARKER} VALUES ({VERSION})")
        self.connection.execute("COMMIT")

    def insert(self, rows: Rows) -> int:
        """Write every row of one request in one transaction; the count once committed."""
        import os

        batches = [(name, found, _batch_file(found)) for name, found in rows.items() if found]
        try:
            self.connection.execute("BEGIN")
            try:
                for name, _, path in batches:
                    if name == "otel_traces":  # through staging, to keep phonehome_spans
                        self.connection.execute(_STAGE, {"path": path})
                        self.connection.execute(self._spans)
                    else:
                        self.connection.execute(_INSERTS[name], {"path": path})
                self.connection.execute("COMMIT")
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
        finally:
            for _, _, path in batches:
                os.unlink(path)
        return sum(len(found) for _, found, _ in batches)

    def close(self) -> None:
        self.connection.close()


def _batch_file(rows: list[Any]) -> str:
    """The rows as newline-delimited JSON in a private temporary file (its path)."""
    import json
    import os
    import tempfile

    handle, path = tempfile.mkstemp(prefix="phonehome-batch-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as batch:
        for row in rows:
            values = {f"c{i}": v for i, v in enumerate(row)}
            batch.write(json.dumps(values, separators=(",", ":")) + "\n")
    return path


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
