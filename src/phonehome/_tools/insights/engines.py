"""Where the questions run: the embedded store (DuckDB) or a ClickHouse server over HTTP.

An engine answers ``rows(sql)`` and holds the relations the questions share: the embedded
store computes each once into a temporary table; ClickHouse gets each as a sub-query, which
its planner handles without a session.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from phonehome._tools.insights import dialect
from phonehome._tools.insights.store import SPANS, StoreError, open_read_only

Row = tuple[Any, ...]


class EngineError(Exception):
    """A query could not be run; the message is one line for people."""


class Engine:
    dialect: dialect.Dialect = dialect.DuckDB

    def __init__(self) -> None:
        self.relations: dict[str, str] = {}

    def sql(self, template: str) -> str:
        """``template`` with each ``{relation}`` replaced by what this engine holds for it."""
        return template.format(**self.relations) if self.relations else template

    def relation(self, name: str, template: str, keep: bool = True) -> None:
        """Hold ``template``'s rows as ``{name}`` (as a table if ``keep`` and the engine can)."""
        raise NotImplementedError

    def rows(self, template: str) -> list[Row]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Embedded(Engine):
    """The store file, read-only."""

    dialect = dialect.DuckDB

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.connection = open_read_only(path)
        self.connection.execute("SET preserve_insertion_order = false")  # every answer sorts
        self.connection.execute("SET enable_progress_bar = false")
        self.path = path

    def relation(self, name: str, template: str, keep: bool = True) -> None:
        if name == "spans":  # the store keeps it: store.SPANS
            self.relations[name] = SPANS
            return
        kind = "TABLE" if keep else "VIEW"
        self.rows(f"CREATE OR REPLACE TEMP {kind} {name} AS {template}")
        self.relations[name] = name

    def rows(self, template: str) -> list[Row]:
        try:
            found = self.connection.execute(self.sql(template)).fetchall()
            return [tuple(row) for row in found]
        except Exception as error:
            raise EngineError(f"--store {self.path}: {_first_line(error)}") from None

    def close(self) -> None:
        self.connection.close()


class ClickHouseRows(Engine):
    """The ClickHouse form: relations become sub-queries, answers come as JSONCompact."""

    dialect = dialect.ClickHouse

    def relation(self, name: str, template: str, keep: bool = True) -> None:
        self.relations[name] = f"({self.sql(template)})"

    def rows(self, template: str) -> list[Row]:
        text = self.query(self.sql(template) + "\nFORMAT JSONCompact")
        try:
            return [tuple(row) for row in json.loads(text)["data"]] if text.strip() else []
        except (ValueError, KeyError, TypeError) as error:
            raise EngineError(f"{self.where}: not a ClickHouse answer ({error})") from None

    where = "ClickHouse"

    def query(self, sql: str) -> str:
        raise NotImplementedError


class ClickHouseHTTP(ClickHouseRows):
    """A ClickHouse server's HTTP interface, e.g. ``http://127.0.0.1:8123/?database=otel``
    (``user:password@`` in the URL for credentials; the database defaults to ``otel``, the
    exporters' own default)."""

    SETTINGS: ClassVar[dict[str, str]] = {
        "output_format_json_quote_64bit_integers": "0",
        "readonly": "2",
    }

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        super().__init__()
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError(f"--clickhouse {url}: expected http(s)://HOST:PORT/")
        query = dict(parse_qsl(parts.query))
        query.setdefault("database", "otel")
        self.auth = None
        if parts.username is not None:
            from base64 import b64encode
            from urllib.parse import unquote

            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth = "Basic " + b64encode(pair.encode()).decode()
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        if ":" in parts.hostname:
            netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
        self.endpoint = urlunsplit(
            (parts.scheme, netloc, parts.path or "/", urlencode({**query, **self.SETTINGS}), "")
        )
        self.where = f"--clickhouse {urlunsplit((parts.scheme, netloc, parts.path, '', ''))}"
        self.timeout = timeout

    def query(self, sql: str) -> str:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.endpoint, data=sql.encode(), method="POST")
        if self.auth:
            request.add_header("Authorization", self.auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip().splitlines()
            message = detail[0] if detail else error.reason
            raise EngineError(f"{self.where}: HTTP {error.code}: {message}"[:300]) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise EngineError(f"{self.where}: does not answer ({reason})") from None


def open_engine(store: Path | None, clickhouse: str | None) -> Engine:
    """The engine the command line names, or a one-line :class:`EngineError`."""
    if clickhouse is not None:
        return ClickHouseHTTP(clickhouse)
    assert store is not None
    try:
        return Embedded(store)
    except StoreError as error:
        raise EngineError(str(error)) from None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
