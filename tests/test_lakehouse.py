"""Replication into Iceberg with MERGE semantics: real PostgreSQL, real Iceberg files."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap

import psycopg
import pytest
from malformed_rows import MALFORMED, MALFORMED_COUNTS

from akko_assets.contract import TRANSACTION_SCHEMA
from akko_assets.ingest.seed import seed_transactions
from akko_assets.lakehouse.catalog import TRANSACTIONS, open_catalog
from akko_assets.lakehouse.replicate import EmptySource, replicate
from akko_assets.resources.engine import connect_curated
from akko_assets.resources.postgres import connect
from akko_assets.settings import load_settings

AS_OF = dt.date(2026, 11, 30)


def _count(catalog) -> int:
    return catalog.load_table(TRANSACTIONS).scan().to_arrow().num_rows


@pytest.fixture
def seeded(akko_env):
    settings = load_settings()
    seed_transactions(settings.pg_dsn, 3000, 5, AS_OF)
    return settings


def test_full_then_rerun_adds_nothing(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        first = replicate(conn, catalog)
        second = replicate(conn, catalog)
    assert (first.mode, first.rows_inserted, first.table_rows) == ("full", 3000, 3000)
    assert (second.mode, second.source_rows_read, second.rows_written) == ("incremental", 0, 0)
    assert _count(catalog) == 3000
    con = connect_curated(seeded)
    assert con.sql("SELECT count(DISTINCT transaction_id) FROM banking.transactions").fetchone()[0] == 3000


def test_updates_change_rows_and_move_partitions(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
        conn.execute(
            "UPDATE akko.raw_transactions SET amount = 12345.67, region = 'MEA', country = 'AE', "
            "updated_at = clock_timestamp() WHERE transaction_id IN ('T0000000001', 'T0000000002')"
        )
        conn.commit()
        result = replicate(conn, catalog)
    assert (result.mode, result.rows_updated, result.rows_inserted, result.table_rows) == ("incremental", 2, 0, 3000)
    rows = catalog.load_table(TRANSACTIONS).scan(row_filter="amount = 12345.67").to_arrow()
    assert sorted(rows.column("transaction_id").to_pylist()) == ["T0000000001", "T0000000002"]
    assert set(rows.column("region").to_pylist()) == {"MEA"}
    mea_files = [t.file.file_path for t in catalog.load_table(TRANSACTIONS).scan(row_filter="region = 'MEA'").plan_files()]
    assert mea_files and all("region=MEA" in f for f in mea_files)


def test_incremental_append_reads_only_new_rows(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
    seed_transactions(seeded.pg_dsn, 1000, 6, AS_OF, mode="append")
    with connect(seeded.pg_dsn) as conn:
        result = replicate(conn, catalog)
    assert (result.mode, result.source_rows_read, result.rows_inserted, result.rows_updated) == ("incremental", 1000, 1000, 0)
    assert _count(catalog) == 4000


def test_reseed_mirrors_the_new_source(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
    seed_transactions(seeded.pg_dsn, 1200, 9, AS_OF)  # replace with fewer rows
    with connect(seeded.pg_dsn) as conn:
        result = replicate(conn, catalog)
    assert result.mode == "full" and _count(catalog) == 1200


def test_partition_pruning_scans_one_partition(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
    table = catalog.load_table(TRANSACTIONS)
    all_files = list(table.scan().plan_files())
    eu_files = list(table.scan(row_filter="region = 'EU'").plan_files())
    assert len({f.file.partition[0] for f in all_files}) == 5
    assert eu_files and len(eu_files) < len(all_files)
    assert {f.file.partition[0] for f in eu_files} == {"EU"}


def test_malformed_rows_are_quarantined(seeded):
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        conn.execute(MALFORMED)
        conn.commit()
        result = replicate(conn, catalog)
        rejects = dict(conn.execute("SELECT reason, count(*) FROM akko.raw_transactions_rejects GROUP BY 1").fetchall())
    assert result.rejected == MALFORMED_COUNTS and rejects == MALFORMED_COUNTS
    assert _count(catalog) == 3000
    # A rerun does not quarantine the same rows twice.
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog, full=True)
        assert conn.execute("SELECT count(*) FROM akko.raw_transactions_rejects").fetchone()[0] == 5


def test_empty_source_says_what_to_materialize(akko_env):
    settings = load_settings()
    from akko_assets.resources.postgres import ensure_database

    ensure_database(settings.pg_dsn)
    with connect(settings.pg_dsn) as conn, pytest.raises(EmptySource, match="materialize postgres/raw_transactions first"):
        replicate(conn, open_catalog(settings))


def test_killed_replication_leaves_previous_snapshot(seeded):
    """A process killed just before its Iceberg commit changes nothing; the rerun is exact."""
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
    before = catalog.load_table(TRANSACTIONS).current_snapshot().snapshot_id
    seed_transactions(seeded.pg_dsn, 700, 8, AS_OF, mode="append")
    script = textwrap.dedent(
        """
        import os
        import pyiceberg.table
        from akko_assets.lakehouse.catalog import open_catalog
        from akko_assets.lakehouse.replicate import replicate
        from akko_assets.resources.postgres import connect
        from akko_assets.settings import load_settings

        def die(self, *args, **kwargs):
            os.kill(os.getpid(), 9)  # SIGKILL: no cleanup, no except, no finally

        pyiceberg.table.Transaction.commit_transaction = die
        s = load_settings()
        with connect(s.pg_dsn) as conn:
            replicate(conn, open_catalog(s))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    table = catalog.load_table(TRANSACTIONS)
    assert table.current_snapshot().snapshot_id == before and _count(catalog) == 3000
    with connect(seeded.pg_dsn) as conn:
        result = replicate(conn, catalog)
    assert result.rows_inserted == 700 and _count(catalog) == 3700


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_s3_warehouse_on_a_local_s3_server(seeded, monkeypatch):
    """The same replication with the warehouse in an S3 bucket (moto's S3-protocol server)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("AKKO_S3_ENDPOINT", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_REGION", "us-east-1")
        monkeypatch.setenv("AKKO_ICEBERG_WAREHOUSE", "s3://akko-warehouse/lake")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="akko-warehouse")
        settings = load_settings()
        catalog = open_catalog(settings)
        with connect(settings.pg_dsn) as conn:
            assert replicate(conn, catalog).table_rows == 3000
        keys = [o["Key"] for o in boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
                .list_objects_v2(Bucket="akko-warehouse")["Contents"]]
        assert any(k.startswith("lake/banking/transactions/data/region=EU/") and k.endswith(".parquet") for k in keys)
        # DuckDB reads the same table through its httpfs + iceberg extensions.
        con = connect_curated(settings)
        assert con.sql("SELECT count(*) FROM banking.transactions WHERE region = 'EU'").fetchone()[0] > 0
    finally:
        server.stop()


def test_row_of_a_long_running_writer_is_not_skipped(seeded):
    """A writer opens its transaction (its row's updated_at is stamped then), another writer commits
    later rows, a replication runs, then the first commits: its row must still arrive."""
    catalog = open_catalog(seeded)
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, catalog)
    columns = [c for c in TRANSACTION_SCHEMA.names if c not in ("transaction_id", "updated_at")]
    slow = psycopg.connect(seeded.pg_dsn)
    try:
        slow.execute(  # updated_at takes the column default, clock_timestamp(), inside the open transaction
            f"INSERT INTO akko.raw_transactions (transaction_id, {', '.join(columns)}) "
            f"SELECT 'TLATE000001', {', '.join(columns)} FROM akko.raw_transactions "
            "WHERE transaction_id = 'T0000000003'"
        )
        seed_transactions(seeded.pg_dsn, 200, 6, AS_OF, mode="append")  # commits rows stamped later
        with connect(seeded.pg_dsn) as conn:
            during = replicate(conn, catalog)
        assert (during.mode, during.rows_inserted) == ("incremental", 200)
        slow.commit()
    finally:
        slow.close()
    with connect(seeded.pg_dsn) as conn:
        after = replicate(conn, catalog)
    # The mark stayed below the open writer, so the late row comes now; the 200 rows read again
    # are an idempotent MERGE (nothing updated).
    assert (after.rows_inserted, after.rows_updated) == (1, 0)
    assert _count(catalog) == 3201
    rows = catalog.load_table(TRANSACTIONS).scan(row_filter="transaction_id = 'TLATE000001'").to_arrow()
    assert rows.num_rows == 1
    with connect(seeded.pg_dsn) as conn:
        assert replicate(conn, catalog).source_rows_read == 0  # and then the mark catches up
