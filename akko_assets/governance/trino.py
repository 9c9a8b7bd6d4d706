"""The k8s profile's engine for the governed executor: Trino, queried as the caller.

The executor has already checked the query and rewritten every governed table into its masked,
row-filtered subquery (written in Trino's dialect). This module runs that SQL on Trino under the
caller's own identity, never a shared service user, so Trino's OPA access control (the same Rego
in opa/, loaded by the OPA server) enforces the same masks and filters a second time:

- over HTTPS, with a verified bearer token, the token itself is forwarded (Trino's JWT
  authenticator checks it against Keycloak and takes `preferred_username` as the user);
- otherwise the verified user name goes in `X-Trino-User` (plain HTTP inside the cluster, where
  Trino trusts the header: the network is the trust boundary, and this process verified the token).

The current trace context travels in `traceparent`, so Trino's own spans join the caller's trace.
Configuration comes from the environment (k8s/base/akko.env): TRINO_HOST, TRINO_PORT,
TRINO_CATALOG, TRINO_SCHEMA, TRINO_HTTP_SCHEME, TRINO_VERIFY.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from akko_assets.governance.errors import AccessDenied, QueryError
from akko_assets.governance.executor import QueryResult, _one_line
from akko_assets.governance.identity import Identity

SOURCE = "akko-governed-executor"
# Trino error names that mean "this caller may not", as opposed to "this query is wrong".
_DENIAL_ERRORS = frozenset({"PERMISSION_DENIED", "ACCESS_DENIED"})
_MISSING_ERRORS = frozenset({"TABLE_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND"})


@dataclass(frozen=True)
class TrinoEngine:
    """Where the k8s profile's governed SQL runs. One HTTP session per governed call."""

    host: str
    port: int = 8080
    catalog: str = "iceberg"
    schema: str = "marts"
    http_scheme: str = "http"
    verify: bool | str = True  # a CA bundle path, or False for a self-signed dev certificate
    request_timeout: float = 60.0

    name = "trino"
    dialect = "trino"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrinoEngine:
        env = os.environ if env is None else env
        host = env.get("TRINO_HOST", "").strip()
        if not host:
            raise QueryError("AKKO_PROFILE=k8s queries Trino: set TRINO_HOST (and TRINO_PORT), e.g. TRINO_HOST=trino TRINO_PORT=8080")
        port_text = env.get("TRINO_PORT", "8080").strip() or "8080"
        try:
            port = int(port_text)
        except ValueError:
            raise QueryError(f"TRINO_PORT={port_text!r} is not a port number: use e.g. 8080") from None
        scheme = (env.get("TRINO_HTTP_SCHEME", "http").strip() or "http").lower()
        if scheme not in ("http", "https"):
            raise QueryError(f"TRINO_HTTP_SCHEME={scheme!r} is unknown: use http or https")
        verify_text = env.get("TRINO_VERIFY", "").strip()
        verify: bool | str = True
        if verify_text.lower() in ("0", "false", "no"):
            verify = False
        elif verify_text and verify_text.lower() not in ("1", "true", "yes"):
            verify = verify_text
        return cls(
            host=host,
            port=port,
            catalog=env.get("TRINO_CATALOG", "iceberg").strip() or "iceberg",
            schema=env.get("TRINO_SCHEMA", "marts").strip() or "marts",
            http_scheme=scheme,
            verify=verify,
        )

    @property
    def url(self) -> str:
        return f"{self.http_scheme}://{self.host}:{self.port}"

    def open(self, identity: Identity) -> TrinoSession:
        import trino  # the k8s extra; imported here so the local profile never needs it

        auth = None
        if identity.token and self.http_scheme == "https":
            auth = trino.auth.JWTAuthentication(identity.token)
        connection = trino.dbapi.connect(
            host=self.host,
            port=self.port,
            user=identity.user,
            catalog=self.catalog,
            schema=self.schema,
            http_scheme=self.http_scheme,
            auth=auth,
            verify=self.verify,
            source=SOURCE,
            http_headers=_trace_headers(),
            request_timeout=self.request_timeout,
            max_attempts=1,  # a governed query is not retried behind the caller's back
        )
        return TrinoSession(self, connection)


def _trace_headers() -> dict[str, str]:
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


class TrinoSession:
    def __init__(self, engine: TrinoEngine, connection: Any) -> None:
        self.engine = engine
        self.connection = connection

    def describe(self, schema: str, table: str) -> tuple[tuple[str, str], ...]:
        relation = exp.table_(table, db=schema, quoted=True).sql("trino")
        try:
            rows = self._fetch(f"DESCRIBE {relation}", None)[1]
        except QueryError as exc:
            raise QueryError(f"table {schema}.{table} is governed but not readable in Trino catalog {self.engine.catalog!r}: {exc}") from None
        # Trino's DESCRIBE: Column, Type, Extra, Comment.
        return tuple((str(row[0]), str(row[1])) for row in rows)

    def run(self, sql: str, limit: int | None) -> QueryResult:
        columns, rows = self._fetch(sql, limit)
        return QueryResult(columns=columns, rows=rows)

    def close(self) -> None:
        self.connection.close()

    def _fetch(self, sql: str, limit: int | None) -> tuple[list[str], list[tuple[Any, ...]]]:
        from trino import exceptions as trino_errors

        cursor = self.connection.cursor()
        try:
            cursor.execute(sql)
            if limit is None:
                rows = cursor.fetchall()
            else:
                rows = cursor.fetchmany(limit) if limit > 0 else []
                cursor.cancel()  # stop the rest of the query on the cluster
            columns = [d[0] for d in cursor.description or []]
        except trino_errors.TrinoUserError as exc:
            if exc.error_name in _DENIAL_ERRORS:
                raise AccessDenied(f"Trino denied the query: {_one_line(exc.message)}") from None
            if exc.error_name in _MISSING_ERRORS:
                raise QueryError(f"{exc.error_name.lower().replace('_', ' ')}: {_one_line(exc.message)}") from None
            raise QueryError(f"query failed: {_one_line(exc.message)}") from None
        except trino_errors.TrinoQueryError as exc:
            raise QueryError(f"query failed in Trino ({exc.error_name}): {_one_line(exc.message)}") from None
        except trino_errors.HttpError as exc:
            raise QueryError(f"Trino at {self.engine.url} answered with an error: {_one_line(str(exc))}") from None
        except Exception as exc:  # connection refused, DNS, TLS: one line naming the fix
            if type(exc).__module__.startswith(("requests", "urllib3", "trino")):
                raise QueryError(
                    f"cannot reach Trino at {self.engine.url} ({type(exc).__name__}): check TRINO_HOST/TRINO_PORT and that Trino is up"
                ) from None
            raise
        return columns, [tuple(row) for row in rows]
