"""CLI entry points of the governed read path (the lead wires them into Typer as `akko sql` / `akko token`)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from akko_assets.governance.errors import AccessDenied, QueryError
from akko_assets.governance.executor import Engine, GovernedExecutor, QueryResult, engine_for_profile
from akko_assets.governance.identity import DEFAULT_AUDIENCE, Identity, identity_for_user, issue_token, verify_token
from akko_assets.governance.policy import PolicyEngine

EXIT_OK, EXIT_ERROR, EXIT_DENIED = 0, 1, 2


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def format_table(result: QueryResult) -> str:
    """A plain aligned text table (what `akko sql` prints without --json)."""
    cells = [["NULL" if v is None else str(v) for v in row] for row in result.rows]
    widths = [len(c) for c in result.columns]
    for row in cells:
        widths = [max(w, len(v)) for w, v in zip(widths, row)]
    line = lambda values: " | ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()
    out = [line(result.columns), "-+-".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    return "\n".join(out)


def resolve_identity(user: str | None, token: str | None,
                     audience: str | tuple[str, ...] = DEFAULT_AUDIENCE) -> Identity:
    """`--token` is verified like any bearer token (issued for `audience`); `--user` is the local
    shortcut (realm lookup)."""
    if bool(user) == bool(token):
        raise AccessDenied("give exactly one of --user NAME or --token JWT")
    if token:
        return verify_token(token, audience=audience)
    assert user is not None
    from akko_assets.settings import load_settings

    if load_settings().profile == "k8s":
        # The name shortcut trusts whoever types it; in the cluster identities come from Keycloak.
        raise AccessDenied("--user is the local profile's shortcut: on k8s pass --token with a Keycloak access token")
    return identity_for_user(user)


def run_sql_command(
    sql: str,
    user: str | None = None,
    token: str | None = None,
    as_json: bool = False,
    *,
    connect: Engine | Callable[[], duckdb.DuckDBPyConnection] | None = None,
    policy: PolicyEngine | None = None,
    limit: int | None = None,
    extra_tables: Sequence[str] = (),
) -> int:
    """Run one governed SELECT and print it; 0 = ok, 2 = denied (one line on stderr), 1 = query error.

    The SQL is read in the engine's dialect: DuckDB locally, Trino in the k8s profile."""
    try:
        if connect is None:
            connect = _profile_engine()
        identity = resolve_identity(user, token)
        executor = GovernedExecutor(connect, policy or PolicyEngine(), extra_tables=extra_tables, read_dialect=None)
        result = executor.execute(sql, identity, limit=limit)
    except AccessDenied as exc:
        print(f"denied: {exc}", file=sys.stderr)
        return EXIT_DENIED
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if as_json:
        print(json.dumps({"columns": result.columns, "rows": [[_json_value(v) for v in row] for row in result.rows]}))
    else:
        print(format_table(result))
    return EXIT_OK


def _profile_engine() -> Engine:
    from akko_assets.settings import load_settings

    def connect_curated() -> duckdb.DuckDBPyConnection:
        # Imported late: the curated-layer engine belongs to resources/ and is heavy to import.
        from akko_assets.resources.engine import connect_curated as connect

        return connect()

    return engine_for_profile(load_settings().profile, connect_curated)


def token_command(user: str, audience: str = "trino") -> str:
    """A signed Keycloak-shaped token for a realm user (`akko token --user carol`)."""
    return issue_token(user, audience=audience)
