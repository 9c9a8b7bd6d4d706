"""Seed or extend the PostgreSQL source: generation + COPY, the body of `postgres/raw_transactions`."""

from __future__ import annotations

import datetime as dt
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from akko_assets.ingest.generator import iter_transaction_batches
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
        if mode == "replace":
            batches = iter_transaction_batches(rows, seed, as_of)
        else:
            from akko_assets.ingest.load import ensure_schema

            ensure_schema(conn)
            conn.commit()
            state = source_state(conn)
            # Live-looking rows: they continue right after the latest transaction.
            start = (state.max_ts or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(microseconds=1)
            end = start + dt.timedelta(seconds=max(3600, rows * 30))
            batches = iter_transaction_batches(rows, seed, as_of, first_index=state.max_index + 1, start=start, end=end)
        timing = {"generate": 0.0, "fraud": 0}

        def timed(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
            # Generation and COPY interleave batch by batch; time each side separately.
            while True:
                t0 = time.perf_counter()
                batch = next(batches, None)
                timing["generate"] += time.perf_counter() - t0
                if batch is None:
                    return
                timing["fraud"] += pc.sum(batch.column("is_fraud").cast(pa.int64())).as_py() or 0
                yield batch

        t0 = time.perf_counter()
        stream = timed(batches)
        first = next(stream, None)  # the whole draw happens here, before any lock is taken
        data = itertools.chain([first], stream) if first is not None else []
        written = (replace_transactions if mode == "replace" else append_transactions)(conn, data)
        elapsed = time.perf_counter() - t0
        total = source_state(conn).rows
    return SeedResult(mode, written, total, int(timing["fraud"]), round(timing["generate"], 3),
                      round(elapsed - timing["generate"], 3))
