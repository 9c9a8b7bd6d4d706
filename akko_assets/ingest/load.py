"""Load generated transactions into PostgreSQL `akko.raw_transactions` with COPY."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv

from akko_assets.contract import TRANSACTION_SCHEMA

RAW_TABLE = "akko.raw_transactions"
COPY_BATCH_ROWS = 50_000

DDL = """
CREATE SCHEMA IF NOT EXISTS akko;
CREATE TABLE IF NOT EXISTS akko.raw_transactions (
    transaction_id    text PRIMARY KEY,
    customer_id       text,
    customer_name     text,
    card_pan          text,
    amount            numeric(12, 2),
    currency          text,
    merchant          text,
    merchant_category text,
    channel           text,
    region            text,
    country           text,
    status            text,
    memo              text,
    ts                timestamptz,
    is_fraud          boolean,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS raw_transactions_updated_at ON akko.raw_transactions (updated_at);
CREATE INDEX IF NOT EXISTS raw_transactions_ts ON akko.raw_transactions (ts);
-- A new generation id marks a `replace` load, so the replicator knows to mirror the whole table
-- instead of merging only rows newer than its high-water mark.
CREATE TABLE IF NOT EXISTS akko.source_meta (key text PRIMARY KEY, value text NOT NULL);
"""


@dataclass(frozen=True)
class SourceState:
    rows: int
    max_index: int  # highest numeric part of transaction_id, -1 when empty
    max_ts: dt.datetime | None
    max_updated_at: dt.datetime | None


def ensure_schema(conn: psycopg.Connection) -> None:
    # CREATE INDEX IF NOT EXISTS takes a SHARE lock before it finds the index exists, so running the
    # DDL every time would wait behind any open writer of the table: run it only when something is
    # missing (a concurrent first run is settled by the IF NOT EXISTS clauses).
    present = conn.execute(
        "SELECT to_regclass('akko.raw_transactions') IS NOT NULL AND to_regclass('akko.source_meta') IS NOT NULL "
        "AND to_regclass('akko.raw_transactions_updated_at') IS NOT NULL AND to_regclass('akko.raw_transactions_ts') IS NOT NULL"
    ).fetchone()[0]
    if not present:
        conn.execute(DDL)


def source_state(conn: psycopg.Connection) -> SourceState:
    row = conn.execute(
        """
        SELECT count(*),
               coalesce(max(substr(transaction_id, 2)::bigint) FILTER (WHERE transaction_id ~ '^T[0-9]+$'), -1),
               max(ts), max(updated_at)
        FROM akko.raw_transactions
        """
    ).fetchone()
    return SourceState(rows=row[0], max_index=row[1], max_ts=row[2], max_updated_at=row[3])


def _csv_chunks(table: pa.Table, batch_rows: int):
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for batch in table.to_batches(max_chunksize=batch_rows):
        buf = io.BytesIO()
        pacsv.write_csv(pa.Table.from_batches([batch]), buf, write_options=options)
        yield buf.getvalue()


def copy_transactions(conn: psycopg.Connection, table: pa.Table, batch_rows: int = COPY_BATCH_ROWS) -> int:
    """COPY an Arrow table in the contract schema into raw_transactions (caller owns the transaction).

    Arrow writes CSV in C; PostgreSQL parses it in C: no per-row Python on either side.
    """
    table = table.select(TRANSACTION_SCHEMA.names)
    columns = ", ".join(TRANSACTION_SCHEMA.names)
    with conn.cursor() as cur:
        with cur.copy(f"COPY {RAW_TABLE} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for chunk in _csv_chunks(table, batch_rows):
                copy.write(chunk)
    return table.num_rows


Batches = pa.Table | Iterable[pa.Table]


def _copy_all(conn: psycopg.Connection, data: Batches) -> int:
    # An iterable of tables (e.g. iter_transaction_batches) is consumed one batch at a time, so
    # memory stays at one batch however many rows there are.
    return sum(copy_transactions(conn, t) for t in ([data] if isinstance(data, pa.Table) else data))


def replace_transactions(conn: psycopg.Connection, data: Batches) -> int:
    """Replace all rows atomically: readers see the old rows until the new ones commit."""
    with conn.transaction():
        ensure_schema(conn)
        conn.execute(f"TRUNCATE {RAW_TABLE}")
        bump_generation(conn)
        return _copy_all(conn, data)


def append_transactions(conn: psycopg.Connection, data: Batches) -> int:
    with conn.transaction():
        ensure_schema(conn)
        return _copy_all(conn, data)


def insert_transactions_rowwise(conn: psycopg.Connection, table: pa.Table) -> int:
    """executemany baseline, kept only so bench/ can measure what COPY saves."""
    columns = TRANSACTION_SCHEMA.names
    placeholders = ", ".join(["%s"] * len(columns))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO {RAW_TABLE} ({', '.join(columns)}) VALUES ({placeholders})",
            [tuple(r.values()) for r in table.to_pylist()],
        )
    return table.num_rows


def bump_generation(conn: psycopg.Connection) -> str:
    generation = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO akko.source_meta VALUES ('generation', %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (generation,),
    )
    return generation


def current_generation(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT value FROM akko.source_meta WHERE key = 'generation'").fetchone()
    return row[0] if row else "initial"
