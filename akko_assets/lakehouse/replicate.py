"""Replicate `akko.raw_transactions` into Iceberg `banking.transactions` with MERGE semantics.

PostgreSQL streams rows out with COPY into a temporary CSV file that Arrow parses in C, batch by
batch (memory stays at one batch whatever the table size); rows that break the contract are
quarantined in `akko.raw_transactions_rejects`; valid rows are upserted on `transaction_id` together
with the new high-water mark in ONE Iceberg commit, so a run that dies half-way leaves the table at
its previous snapshot and the next run redoes the same work.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue, In

from akko_assets.contract import TRANSACTION_SCHEMA
from akko_assets.ingest.load import RAW_TABLE, current_generation, ensure_schema
from akko_assets.lakehouse.catalog import ensure_transactions_table
from akko_assets.settings import REGIONS

# Rows validated, quarantined and written per step; bounds memory at any source size.
REPLICATE_BATCH_ROWS = 250_000
COMMIT_ATTEMPTS = 3
REPLICATE_LOCK_KEY = 0x616B6B6F  # pg_advisory_lock key ("akko"): replications of one source take turns
HWM_PROPERTY = "akko.source.high-water-mark"
GENERATION_PROPERTY = "akko.source.generation"
REJECTS_DDL = """
CREATE TABLE IF NOT EXISTS akko.raw_transactions_rejects (
    transaction_id text,
    reason         text NOT NULL,
    row_data       jsonb NOT NULL,
    rejected_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS raw_transactions_rejects_key
    ON akko.raw_transactions_rejects (coalesce(transaction_id, ''), reason, md5(row_data::text));
"""


class EmptySource(RuntimeError):
    pass


@dataclass(frozen=True)
class SourcePlan:
    """What one replication reads, decided from one consistent look at the source."""

    new_hwm: dt.datetime
    generation: str
    incremental: bool
    since: dt.datetime | None  # read rows with updated_at above this (None: all rows)

    @property
    def properties(self) -> dict[str, str]:
        return {HWM_PROPERTY: self.new_hwm.isoformat(), GENERATION_PROPERTY: self.generation}


def write_horizon(conn: psycopg.Connection) -> dt.datetime:
    """The latest mark a read starting now may safely record: the server's clock, or the start of the
    oldest transaction still writing to this database if earlier.

    A writer's rows become visible only when it commits, yet carry an `updated_at` from while it
    ran. Marking past the start of a writer still open would skip its rows forever once it commits;
    capping the mark there means they are read next time (rows read twice are an idempotent MERGE).
    Call it outside a transaction, just before `plan_source_read`'s snapshot: a writer that starts in
    between starts after this horizon. Rows must carry `updated_at` no earlier than their writing
    transaction's start, as the column's DEFAULT clock_timestamp() and `akko simulate` do.
    (pg_stat_activity shows other roles' transactions only to superusers and pg_read_all_stats
    members: give the replicating role that, or write the source with the same role.)
    """
    now, oldest = conn.execute(
        "SELECT now(), (SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL)"
    ).fetchone()
    conn.commit()
    return min(now, oldest) if oldest is not None else now


def plan_source_read(conn: psycopg.Connection, table_properties: dict[str, str], full: bool,
                     horizon: dt.datetime) -> SourcePlan:
    """Start a REPEATABLE READ transaction's first statement and decide full vs incremental.

    Call it first inside `with conn.transaction():`, so the count, the mark, the generation and
    (for the pyiceberg path) the rows themselves come from one snapshot of the source. `horizon`
    (from `write_horizon`, taken just before) caps the new mark below writers still open.
    """
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    total, new_hwm = conn.execute(f"SELECT count(*), max(updated_at) FROM {RAW_TABLE}").fetchone()
    if total == 0:
        raise EmptySource("raw_transactions is empty: materialize postgres/raw_transactions first")
    new_hwm = min(new_hwm, horizon)
    generation = current_generation(conn)
    hwm_text = table_properties.get(HWM_PROPERTY)
    incremental = not full and hwm_text is not None and table_properties.get(GENERATION_PROPERTY) == generation
    since = dt.datetime.fromisoformat(hwm_text) if incremental else None
    return SourcePlan(new_hwm, generation, incremental, since)


def result_after_commit(table, *, incremental: bool, read: int, inserted: int, updated: int,
                        rejected: dict[str, int]) -> ReplicationResult:
    """The result both replicators report, read back from the table's committed state."""
    snapshot = table.current_snapshot()
    return ReplicationResult(
        mode="incremental" if incremental else "full",
        source_rows_read=read,
        rows_written=inserted + updated,
        rows_inserted=inserted,
        rows_updated=updated,
        rejected=rejected,
        table_rows=int(snapshot.summary.get("total-records", 0)) if snapshot and snapshot.summary else 0,
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        high_water_mark=table.properties.get(HWM_PROPERTY),
    )


@dataclass
class ReplicationResult:
    mode: str  # "full" or "incremental"
    source_rows_read: int
    rows_written: int
    rows_inserted: int
    rows_updated: int
    rejected: dict[str, int] = field(default_factory=dict)
    table_rows: int = 0
    snapshot_id: int | None = None
    high_water_mark: str | None = None
    seconds: float = 0.0
    attempts: int = 1  # > 1 when a commit lost to a concurrent writer and the step was redone


def _select_sql(since: dt.datetime | None) -> str:
    # Timestamps leave PostgreSQL as ISO-8601 UTC text that Arrow's CSV reader parses natively.
    iso = "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {c}"
    cols = [iso.format(c=c) if c in ("ts", "updated_at") else c for c in TRANSACTION_SCHEMA.names]
    where = f"WHERE updated_at > '{since.isoformat()}'::timestamptz" if since else ""
    return f"SELECT {', '.join(cols)} FROM {RAW_TABLE} {where} ORDER BY transaction_id"


def _spool(conn: psycopg.Connection, since: dt.datetime | None, workdir: Path) -> Path:
    """COPY the rows out to a CSV file: PostgreSQL's snapshot ends quickly, memory stays flat."""
    path = workdir / "raw_transactions.csv"
    with conn.cursor() as cur, path.open("wb") as out:
        with cur.copy(f"COPY ({_select_sql(since)}) TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                out.write(chunk)
    return path


def _to_contract(table: pa.Table) -> pa.Table:
    # Decimal via string keeps cents exact.
    amount = table.column("amount").cast(pa.decimal128(12, 2))
    table = table.set_column(table.schema.get_field_index("amount"), "amount", amount)
    return table.cast(TRANSACTION_SCHEMA, safe=False)


def iter_spooled(path: Path, batch_rows: int = REPLICATE_BATCH_ROWS) -> Iterator[pa.Table]:
    """The spooled CSV as contract-schema tables of about `batch_rows` rows, parsed in C by Arrow."""
    if path.stat().st_size == 0:
        return
    convert = pacsv.ConvertOptions(
        column_types={f.name: (pa.string() if f.type == pa.decimal128(12, 2) else f.type) for f in TRANSACTION_SCHEMA},
        strings_can_be_null=True,
        null_values=[""],  # not Arrow's default list, which turns region "NA" into NULL
        true_values=["t"],
        false_values=["f"],
        quoted_strings_can_be_null=False,  # PostgreSQL quotes empty strings and leaves NULL bare
    )
    read = pacsv.ReadOptions(column_names=TRANSACTION_SCHEMA.names, block_size=16 << 20)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pacsv.open_csv(path, read_options=read, convert_options=convert) as reader:
        for batch in reader:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= batch_rows:
                yield _to_contract(pa.Table.from_batches(pending))
                pending, pending_rows = [], 0
    if pending:
        yield _to_contract(pa.Table.from_batches(pending))


def read_source(conn: psycopg.Connection, since: dt.datetime | None, workdir: Path) -> pa.Table:
    """Rows changed after `since` (all rows when None) as an Arrow table in the contract schema."""
    path = _spool(conn, since, workdir)
    tables = list(iter_spooled(path))
    path.unlink()
    return pa.concat_tables(tables) if tables else TRANSACTION_SCHEMA.empty_table()


def _pan_shaped(value: object) -> bool:
    # isascii: str.isdigit() also accepts other scripts' digits, which are no card number.
    return isinstance(value, str) and len(value) == 16 and value.isascii() and value.isdigit()


def _luhn_ok(pans: pa.ChunkedArray) -> np.ndarray:
    values = pans.to_numpy(zero_copy_only=False)
    ok = np.zeros(len(values), dtype=bool)
    shaped = np.array([v if _pan_shaped(v) else "0" * 15 + "1" for v in values])
    digits = shaped.view(np.uint32).reshape(len(values), -1)[:, :16].astype(np.int64) - ord("0") if len(values) else None
    if digits is None:
        return ok
    rev = digits[:, ::-1].copy()
    doubled = rev[:, 1::2] * 2
    rev[:, 1::2] = np.where(doubled > 9, doubled - 9, doubled)
    ok = rev.sum(axis=1) % 10 == 0
    well_formed = np.array([_pan_shaped(v) for v in values], dtype=bool)
    return ok & well_formed


def validate(table: pa.Table, now: dt.datetime) -> tuple[pa.Table, pa.Table, dict[str, int]]:
    """Split rows into (valid, rejected with a `reason` column, counts per reason).

    The first failing rule names the reason, so each rejected row is counted once.
    """
    n = table.num_rows
    reason = np.full(n, None, dtype=object)

    def flag(mask: np.ndarray, why: str) -> None:
        reason[(reason == None) & mask] = why  # noqa: E711 - elementwise comparison on an object array

    ids = table.column("transaction_id")
    flag(pc.is_null(ids).to_numpy(zero_copy_only=False), "null transaction_id")
    flag(pc.invert(pc.is_in(table.column("region"), pa.array(REGIONS))).fill_null(True).to_numpy(zero_copy_only=False),
         "unknown region")
    amount = table.column("amount")
    flag(pc.is_null(amount).to_numpy(zero_copy_only=False), "null amount")
    flag(pc.less(amount.cast(pa.float64()), 0).fill_null(False).to_numpy(zero_copy_only=False), "negative amount")
    flag(~_luhn_ok(table.column("card_pan")), "invalid card_pan")
    future = pa.scalar(now + dt.timedelta(days=1), pa.timestamp("us", tz="UTC"))
    flag(pc.greater(table.column("ts"), future).fill_null(True).to_numpy(zero_copy_only=False), "future or missing ts")
    rejected_mask = pa.array(reason != None)  # noqa: E711
    valid = table.filter(pc.invert(rejected_mask))
    rejected = table.filter(rejected_mask).append_column("reason", pa.array(reason[reason != None], pa.string()))  # noqa: E711
    counts: dict[str, int] = {}
    for why in reason[reason != None]:  # noqa: E711
        counts[why] = counts.get(why, 0) + 1
    return valid, rejected, counts


def quarantine(conn: psycopg.Connection, rejected: pa.Table) -> None:
    conn.execute(REJECTS_DDL)
    if not rejected.num_rows:
        return
    rows = []
    for rec in rejected.to_pylist():
        why = rec.pop("reason")
        rows.append((rec["transaction_id"], why, json.dumps(rec, default=str, sort_keys=True)))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO akko.raw_transactions_rejects (transaction_id, reason, row_data) VALUES (%s, %s, %s::jsonb) "
            "ON CONFLICT DO NOTHING",
            rows,
        )


def replicate(conn: psycopg.Connection, catalog: Catalog, *, full: bool = False,
              now: dt.datetime | None = None, batch_rows: int = REPLICATE_BATCH_ROWS,
              max_attempts: int = COMMIT_ATTEMPTS) -> ReplicationResult:
    """Bring `banking.transactions` up to date with PostgreSQL.

    Full mirror when asked, when the table is new, or when the source was re-seeded (its generation
    changed); otherwise an incremental MERGE of rows whose `updated_at` passed the high-water mark.
    Runs that share the source database take turns (an advisory lock); a commit that still loses
    to another writer of the table (Spark, another catalog client) after pyiceberg's own retries
    redoes the whole step, at most `max_attempts` times.
    """
    started = time.perf_counter()
    conn.execute("SELECT pg_advisory_lock(%s)", (REPLICATE_LOCK_KEY,))  # held by the session, until unlock
    ensure_schema(conn)
    conn.commit()
    try:
        for attempt in range(1, max_attempts + 1):
            try:
                result = _replicate_once(conn, catalog, full=full, now=now, batch_rows=batch_rows)
            except (CommitFailedException, ValidationException):
                # pyiceberg already retried the commit on the new base; this conflict it could not
                # resolve (or ran out of retries), and nothing landed: redo read, checks and write.
                if attempt == max_attempts:
                    raise
                continue
            result.attempts = attempt
            result.seconds = round(time.perf_counter() - started, 3)
            return result
        raise AssertionError("unreachable")
    finally:
        if not conn.closed and not conn.broken:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(%s)", (REPLICATE_LOCK_KEY,))
            conn.commit()


def _replicate_once(conn: psycopg.Connection, catalog: Catalog, *, full: bool, now: dt.datetime | None,
                    batch_rows: int) -> ReplicationResult:
    now = now or dt.datetime.now(dt.timezone.utc)
    table = ensure_transactions_table(catalog)
    props = table.properties
    with tempfile.TemporaryDirectory(prefix="akko-replicate-") as tmp:
        horizon = write_horizon(conn)
        # Snapshot isolation: generation, rows and the new mark all come from one consistent read.
        with conn.transaction():
            plan = plan_source_read(conn, props, full, horizon)
            incremental = plan.incremental
            spooled = _spool(conn, plan.since, Path(tmp))

        properties = plan.properties
        read = inserted = updated = 0
        reject_counts: dict[str, int] = {}
        # One Iceberg transaction for every batch: a run that dies half-way commits nothing.
        with table.transaction() as tx:
            if not incremental:
                tx.delete(AlwaysTrue())
            for source in iter_spooled(spooled, batch_rows):
                read += source.num_rows
                valid, rejected, counts = validate(source, now)
                for why, n in counts.items():
                    reject_counts[why] = reject_counts.get(why, 0) + n
                with conn.transaction():
                    quarantine(conn, rejected)
                if incremental:
                    rejected_ids = [i for i in rejected.column("transaction_id").to_pylist() if i is not None]
                    if rejected_ids:
                        tx.delete(In("transaction_id", rejected_ids))  # a row that turned invalid leaves the curated table
                    if valid.num_rows:
                        result = tx.upsert(valid, join_cols=["transaction_id"])
                        inserted, updated = inserted + result.rows_inserted, updated + result.rows_updated
                elif valid.num_rows:
                    # Partitioned tables take Arrow tables, not streams (pyiceberg 0.12): append batch by batch.
                    tx.append(valid)
                    inserted += valid.num_rows
            tx.set_properties(properties)
    return result_after_commit(catalog.load_table(table.name()), incremental=incremental, read=read,
                               inserted=inserted, updated=updated, rejected=reject_counts)
