"""A Trino-protocol stand-in for tests: no Trino server runs on this machine (it needs Java >= 21).

It speaks the client REST protocol the `trino` Python client uses (POST /v1/statement, paged
results through nextUri, DELETE to cancel, Trino's JSON error shape), records what each request
carried (X-Trino-User, Authorization, traceparent, catalog, schema, SQL), and runs the statement
by transpiling it from Trino SQL back to DuckDB with sqlglot over a real DuckDB file. It does NOT
evaluate OPA: Trino's own enforcement is covered by the Rego tests in the contract Trino uses.
What it proves is what the governed executor sends to Trino and how it reads the answers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import sqlglot

PAGE_ROWS = 100


@dataclass
class Received:
    user: str | None
    authorization: str | None
    traceparent: str | None
    catalog: str | None
    schema: str | None
    source: str | None
    sql: str


@dataclass
class TrinoStandIn:
    connect: Callable[[], duckdb.DuckDBPyConnection]
    deny_users: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    _pages: dict[str, list[list[Any]]] = field(default_factory=dict)
    _ids = itertools.count(1)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._columns: dict[str, list[dict[str, Any]]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- protocol ----------------------------------------------------------------------------------

    def statement(self, sql: str, headers: Any) -> dict[str, Any]:
        record = Received(
            user=headers.get("X-Trino-User"),
            authorization=headers.get("Authorization"),
            traceparent=headers.get("traceparent"),
            catalog=headers.get("X-Trino-Catalog"),
            schema=headers.get("X-Trino-Schema"),
            source=headers.get("X-Trino-Source"),
            sql=sql,
        )
        with self._lock:
            self.received.append(record)
            query_id = f"20261204_000000_{next(self._ids):05d}_akko"
        if record.user in self.deny_users:
            return _failed(query_id, "PERMISSION_DENIED", f"Access Denied: Cannot select from columns of {record.catalog} for {record.user}")
        try:
            duck_sql = sqlglot.transpile(sql, read="trino", write="duckdb")[0]
        except sqlglot.errors.SqlglotError as exc:
            return _failed(query_id, "SYNTAX_ERROR", str(exc).splitlines()[0])
        con = self.connect()
        try:
            cursor = con.execute(duck_sql)
            description = cursor.description or []
            rows = cursor.fetchall()
        except duckdb.CatalogException as exc:
            return _failed(query_id, "TABLE_NOT_FOUND", str(exc).splitlines()[0])
        except duckdb.Error as exc:
            return _failed(query_id, "GENERIC_USER_ERROR", str(exc).splitlines()[0])
        finally:
            con.close()
        columns = [_column(name, str(type_code)) for name, type_code, *_ in description]
        data = [[_value(v, c) for v, c in zip(row, columns)] for row in rows]
        pages = [data[i : i + PAGE_ROWS] for i in range(0, len(data), PAGE_ROWS)] or [[]]
        with self._lock:
            self._pages[query_id] = pages[1:]
        return self._page(query_id, columns, pages[0])

    def next_page(self, query_id: str) -> dict[str, Any]:
        with self._lock:
            remaining = self._pages.get(query_id, [])
            page = remaining.pop(0) if remaining else []
        return self._page(query_id, self._columns.get(query_id, []), page)

    def cancel(self, query_id: str) -> None:
        with self._lock:
            self.cancelled.append(query_id)
            self._pages.pop(query_id, None)

    def _page(self, query_id: str, columns: list[dict[str, Any]], data: list[list[Any]]) -> dict[str, Any]:
        self._columns[query_id] = columns
        more = bool(self._pages.get(query_id))
        body: dict[str, Any] = {
            "id": query_id,
            "infoUri": f"http://127.0.0.1:{self.port}/ui/query.html?{query_id}",
            "columns": columns,
            "data": data,
            "stats": {"state": "RUNNING" if more else "FINISHED", "queued": False, "scheduled": True},
            "warnings": [],
        }
        if more:
            body["nextUri"] = f"http://127.0.0.1:{self.port}/v1/statement/executing/{query_id}/x"
        return body


def _failed(query_id: str, name: str, message: str) -> dict[str, Any]:
    return {
        "id": query_id,
        "infoUri": f"http://127.0.0.1/ui/query.html?{query_id}",
        "stats": {"state": "FAILED"},
        "error": {"message": message, "errorCode": 1, "errorName": name, "errorType": "USER_ERROR",
                  "failureInfo": {"type": "io.trino.spi.TrinoException", "message": message}},
    }


_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def _column(name: str, duck_type: str) -> dict[str, Any]:
    """DuckDB result type -> Trino column (name, type, typeSignature) as Trino's protocol writes it."""
    upper = duck_type.upper()
    arguments: list[dict[str, Any]] = []
    if upper == "BOOLEAN":
        raw = trino_type = "boolean"
    elif upper in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
        raw = trino_type = "bigint"
    elif upper in ("DOUBLE", "FLOAT"):
        raw = trino_type = "double"
    elif match := _DECIMAL.fullmatch(upper):
        raw, trino_type = "decimal", f"decimal({match[1]},{match[2]})"
        arguments = [{"kind": "LONG", "value": int(match[1])}, {"kind": "LONG", "value": int(match[2])}]
    elif upper in ("HUGEINT", "UBIGINT"):
        raw, trino_type = "decimal", "decimal(38,0)"
        arguments = [{"kind": "LONG", "value": 38}, {"kind": "LONG", "value": 0}]
    elif upper == "DATE":
        raw = trino_type = "date"
    elif upper.startswith("TIMESTAMP WITH TIME ZONE"):
        raw, trino_type = "timestamp with time zone", "timestamp(6) with time zone"
        arguments = [{"kind": "LONG", "value": 6}]
    elif upper.startswith("TIMESTAMP"):
        raw, trino_type = "timestamp", "timestamp(6)"
        arguments = [{"kind": "LONG", "value": 6}]
    else:  # unbounded varchar: Trino sends the maximum length as its argument
        raw = trino_type = "varchar"
        arguments = [{"kind": "LONG", "value": 2147483647}]
    return {"name": name, "type": trino_type, "typeSignature": {"rawType": raw, "arguments": arguments}}


def _value(value: Any, column: dict[str, Any]) -> Any:
    if value is None:
        return None
    raw = column["typeSignature"]["rawType"]
    if raw == "decimal":
        return str(decimal.Decimal(value))
    if raw == "date":
        return value.isoformat()
    if raw == "timestamp":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if raw == "timestamp with time zone":
        return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
    if raw in ("bigint", "double", "boolean"):
        return value
    return str(value) if not isinstance(value, str) else value


def _handler(standin: TrinoStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def _reply(self, body: dict[str, Any] | None, status: int = 200) -> None:
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self) -> None:  # noqa: N802 - http.server naming
            if self.path != "/v1/statement":
                return self._reply({"message": "not found"}, 404)
            sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            self._reply(standin.statement(sql, self.headers))

        def do_GET(self) -> None:  # noqa: N802
            parts = self.path.strip("/").split("/")
            if parts[:3] == ["v1", "statement", "executing"]:
                return self._reply(standin.next_page(parts[3]))
            self._reply({"message": "not found"}, 404)

        def do_DELETE(self) -> None:  # noqa: N802
            parts = self.path.strip("/").split("/")
            if parts[:3] == ["v1", "statement", "executing"]:
                standin.cancel(parts[3])
            self._reply(None, 204)

    return Handler
