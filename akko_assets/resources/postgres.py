"""PostgreSQL access: one place that turns connection failures into a message with the fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo


class SourceUnavailable(RuntimeError):
    """PostgreSQL does not answer at the configured DSN."""


def redact(dsn: str) -> str:
    """The DSN without its password, safe to print."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparseable DSN>"
    if "password" in params:
        params["password"] = "***"
    return make_conninfo(**params)


def _unavailable(dsn: str, exc: Exception) -> SourceUnavailable:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return SourceUnavailable(
        f"PostgreSQL is not reachable at {redact(dsn)} ({reason}): "
        "start one with `akko services up` or set AKKO_PG_DSN to a running server"
    )


@contextlib.contextmanager
def connect(dsn: str, *, autocommit: bool = False, connect_timeout: int = 5) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout)
    except psycopg.OperationalError as exc:
        raise _unavailable(dsn, exc) from None
    try:
        with conn:
            yield conn
    except psycopg.OperationalError as exc:
        # The server went away mid-statement (restart, network): say so in one line.
        if conn.broken or conn.closed:
            raise _unavailable(dsn, exc) from None
        raise


def ensure_database(dsn: str) -> None:
    """Create the DSN's database if it does not exist (needs a server that answers)."""
    params = conninfo_to_dict(dsn)
    dbname = params.get("dbname", "postgres")
    admin = make_conninfo(**{**params, "dbname": "postgres"})
    try:
        with connect(dsn):
            return
    except SourceUnavailable:
        pass
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def answers(dsn: str) -> bool:
    """True when a server answers at the DSN's host/port (database may not exist yet)."""
    params = conninfo_to_dict(dsn)
    admin = make_conninfo(**{**params, "dbname": "postgres"})
    try:
        with connect(admin, autocommit=True, connect_timeout=2):
            return True
    except SourceUnavailable:
        return False
