"""Seed or extend the PostgreSQL source: generation + COPY, the body of `postgres/raw_transactions`."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Literal

from akko_assets.ingest.generator import generate_transactions
from akko_assets.ingest.load import append_transactions, replace_transactions, source_state
from akko_assets.resources.postgres import connect, ensure_database

Mode = Literal["replace", "append"]


@dataclass(frozen=True)
class SeedResult:
    mode: str
    rows_written: int
    rows_total: int
    fraud_rows: int
    generate_seconds: float
    copy_seconds: float


def seed_transactions(dsn: str, rows: int, seed: int, as_of: dt.date, mode: Mode = "replace") -> SeedResult:
    if mode not in ("replace", "append"):
        raise ValueError(f"mode {mode!r} is unknown: use 'replace' or 'append'")
    ensure_database(dsn)
    with connect(dsn) as conn:
        t0 = time.perf_counter()
        if mode == "replace":
            table = generate_transactions(rows, seed, as_of)
        else:
            from akko_assets.ingest.load import ensure_schema

            ensure_schema(conn)
            conn.commit()
            state = source_state(conn)
            # Live-looking rows: they continue right after the latest transaction.
            start = (state.max_ts or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(microseconds=1)
            end = start + dt.timedelta(seconds=max(3600, rows * 30))
            table = generate_transactions(rows, seed, as_of, first_index=state.max_index + 1, start=start, end=end)
        t1 = time.perf_counter()
        written = (replace_transactions if mode == "replace" else append_transactions)(conn, table)
        t2 = time.perf_counter()
        total = source_state(conn).rows
    fraud = int(table.column("is_fraud").to_numpy(zero_copy_only=False).sum())
    return SeedResult(mode, written, total, fraud, round(t1 - t0, 3), round(t2 - t1, 3))
