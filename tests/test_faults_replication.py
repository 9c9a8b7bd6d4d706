"""Faults around replication and settings, with real PostgreSQL and Iceberg files.

Already covered elsewhere (not repeated here): a replication killed just before its Iceberg commit
and malformed rows sent to quarantine (tests/test_lakehouse.py), the Spark path's missing Iceberg
runtime (tests/test_spark_replication.py), ADEN's "no tables" (tests/test_aden_refusals.py); SIGKILL
of every writing asset and deleted MLflow artifacts are in tests/test_faults_kill.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from pyiceberg.exceptions import CommitFailedException

from akko_assets.ingest.generator import generate_transactions
from akko_assets.ingest.load import append_transactions
from akko_assets.ingest.seed import seed_transactions
from akko_assets.lakehouse import replicate as replicate_module
from akko_assets.lakehouse.catalog import TRANSACTIONS, open_catalog
from akko_assets.lakehouse.replicate import replicate
from akko_assets.resources import AkkoSettingsResource, IcebergResource, PostgresResource
from akko_assets.resources.engine import connect_curated
from akko_assets.resources.postgres import connect
from akko_assets.settings import load_settings

AS_OF = dt.date(2026, 11, 30)


def _ids_digest(dsn: str) -> tuple[int, str]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*), md5(string_agg(transaction_id, ',' ORDER BY transaction_id COLLATE \"C\")) "
                            "FROM akko.raw_transactions").fetchone()


def _iceberg_digest() -> tuple[int, int, str]:
    con = connect_curated()
    try:
        return con.sql("SELECT count(*), count(DISTINCT transaction_id), "
                       "md5(string_agg(transaction_id, ',' ORDER BY transaction_id)) FROM banking.transactions").fetchone()
    finally:
        con.close()


def _failure_lines(result) -> list[str]:
    return [e.event_specific_data.error.message.strip() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]


def _materialize(asset_module: str, asset_name: str, dsn: str):
    import importlib

    asset = getattr(importlib.import_module(asset_module), asset_name)
    resources = {"settings": AkkoSettingsResource(), "postgres": PostgresResource(dsn=dsn), "iceberg": IcebergResource()}
    return dg.materialize([asset], resources=resources, raise_on_error=False)


# (a) the connection dies while COPY streams the rows out ---------------------------------------

REPLICATE_ASSET = textwrap.dedent(
    """
    import json, sys
    from akko_assets.lakehouse.assets import banking_transactions
    from akko_assets.resources import AkkoSettingsResource, IcebergResource, PostgresResource
    from akko_assets.settings import load_settings
    import dagster as dg

    print("READY", flush=True)
    sys.stdin.readline()
    result = dg.materialize([banking_transactions], raise_on_error=False,
                            resources={"postgres": PostgresResource(dsn=load_settings().pg_dsn), "iceberg": IcebergResource(),
                                       "settings": AkkoSettingsResource()})
    failures = [e.event_specific_data.error.message.strip() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    print("RESULT " + json.dumps({"success": result.success, "failures": failures}), flush=True)
    """
)


def _copy_backend(conn: psycopg.Connection) -> tuple[int, str | None] | None:
    return conn.execute(
        "SELECT pid, wait_event FROM pg_stat_activity WHERE datname = current_database() "
        "AND query LIKE 'COPY (SELECT%' AND pid <> pg_backend_pid()"
    ).fetchone()


def test_connection_killed_mid_copy_fails_clearly_and_keeps_the_snapshot(akko_env):
    settings = load_settings()
    seed_transactions(settings.pg_dsn, 2000, 1, AS_OF)
    catalog = open_catalog(settings)
    with connect(settings.pg_dsn) as conn:
        replicate(conn, catalog)
    before = catalog.load_table(TRANSACTIONS).current_snapshot().snapshot_id
    # Re-seeded: the next run mirrors 60 000 rows (~14 MB of CSV, more than the socket buffers hold).
    seed_transactions(settings.pg_dsn, 60_000, 2, AS_OF)

    proc = subprocess.Popen([sys.executable, "-c", REPLICATE_ASSET], env=os.environ.copy(), text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.readline().strip() == "READY"
        with psycopg.connect(settings.pg_dsn, autocommit=True) as admin:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            deadline = time.monotonic() + 60
            while (backend := _copy_backend(admin)) is None:
                assert time.monotonic() < deadline, "the COPY never started"
                time.sleep(0.005)
            # Stop reading: the server fills the socket and waits on the client, mid-stream.
            os.kill(proc.pid, signal.SIGSTOP)
            while (backend := _copy_backend(admin)) and backend[1] != "ClientWrite":
                assert time.monotonic() < deadline, f"the COPY never blocked on the client: {backend}"
                time.sleep(0.01)
            assert backend is not None, "the COPY finished before the client was stopped"
            assert admin.execute("SELECT pg_terminate_backend(%s)", (backend[0],)).fetchone()[0]
        os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
    outcome = json.loads(out.split("RESULT ", 1)[1])
    assert not outcome["success"]
    (message,) = outcome["failures"]
    first_line = message.splitlines()[0]
    assert "PostgreSQL is not reachable at" in first_line and "port=5432" in first_line, message
    assert f"dbname={settings.pg_dsn.rsplit('/', 1)[1]}" in first_line and "akko services up" in first_line, message
    assert "Traceback" not in message

    assert catalog.load_table(TRANSACTIONS).current_snapshot().snapshot_id == before
    with connect(settings.pg_dsn) as conn:
        result = replicate(conn, catalog)
    rows, digest = _ids_digest(settings.pg_dsn)
    assert (result.mode, result.rows_inserted, rows) == ("full", 60_000, 60_000)
    assert _iceberg_digest() == (60_000, 60_000, digest)


# (e) two writers at once ---------------------------------------------------------------------

REPLICATE_FN = textwrap.dedent(
    """
    import json, sys
    from akko_assets.lakehouse.catalog import open_catalog
    from akko_assets.lakehouse.replicate import replicate
    from akko_assets.resources.postgres import connect
    from akko_assets.settings import load_settings

    s = load_settings()
    catalog = open_catalog(s)
    print("READY", flush=True)
    sys.stdin.readline()
    with connect(s.pg_dsn) as conn:
        r = replicate(conn, catalog)
    print("RESULT " + json.dumps({"mode": r.mode, "inserted": r.rows_inserted, "attempts": r.attempts}), flush=True)
    """
)


def test_two_concurrent_replications_are_serialized(akko_env):
    settings = load_settings()
    seed_transactions(settings.pg_dsn, 20_000, 3, AS_OF)
    procs = [subprocess.Popen([sys.executable, "-c", REPLICATE_FN], env=os.environ.copy(), text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        line = p.stdout.readline().strip()
        assert line == "READY", (line, p.wait(), p.stderr.read()[-2000:])  # '' = it exited: say why
    for p in procs:  # both start together
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.split("RESULT ", 1)[1]))
    # One mirrored everything; the other waited for it and found nothing new.
    assert sorted((o["mode"], o["inserted"]) for o in outcomes) == [("full", 20_000), ("incremental", 0)]
    rows, digest = _ids_digest(settings.pg_dsn)
    assert _iceberg_digest() == (rows, rows, digest)


def _conflicting_writer(monkeypatch, times: int) -> list[int]:
    """Make another client commit to the table while replication is between its read and its commit."""
    calls = []
    original = replicate_module.validate
    other = open_catalog(load_settings())

    def validate_then_conflict(*args, **kwargs):
        calls.append(1)
        if len(calls) <= times:
            # A new snapshot with the same rows (as a compaction would write): the branch moved on.
            table = other.load_table(TRANSACTIONS)
            with table.transaction() as tx:
                tx.overwrite(table.scan().to_arrow())
                tx.set_properties({"akko.test.concurrent-writer": str(len(calls))})
        return original(*args, **kwargs)

    monkeypatch.setattr(replicate_module, "validate", validate_then_conflict)
    # pyiceberg first retries a failed commit itself, rebuilding its snapshots on the new base;
    # with that off, the conflict reaches replicate(), whose fallback is to redo the whole step.
    with other.load_table(TRANSACTIONS).transaction() as tx:
        tx.set_properties({"commit.retry.num-retries": "0"})
    return calls


def _replicated_then_appended(replicated: int, appended: int):
    """A source of `replicated` rows mirrored to Iceberg, then `appended` new rows not yet replicated."""
    settings = load_settings()
    seed_transactions(settings.pg_dsn, replicated, 4, AS_OF)
    catalog = open_catalog(settings)
    with connect(settings.pg_dsn) as conn:
        replicate(conn, catalog)
    seed_transactions(settings.pg_dsn, appended, 5, AS_OF, mode="append")
    return settings, catalog


def test_commit_conflict_redoes_the_step(akko_env, monkeypatch):
    settings, catalog = _replicated_then_appended(3000, 500)
    calls = _conflicting_writer(monkeypatch, times=1)
    with connect(settings.pg_dsn) as conn:
        result = replicate(conn, catalog)
    assert (result.attempts, len(calls), result.rows_inserted) == (2, 2, 500)
    rows, digest = _ids_digest(settings.pg_dsn)
    assert _iceberg_digest() == (3500, 3500, digest)
    assert catalog.load_table(TRANSACTIONS).properties["akko.test.concurrent-writer"] == "1"


def test_commit_conflicts_are_bounded(akko_env, monkeypatch):
    settings, catalog = _replicated_then_appended(1000, 100)
    calls = _conflicting_writer(monkeypatch, times=99)
    with connect(settings.pg_dsn) as conn, pytest.raises(CommitFailedException):
        replicate(conn, catalog, max_attempts=3)
    assert len(calls) == 3
    # Only the competitor's rewrites landed: the 1 000 replicated rows, none of the 100 new ones.
    table = catalog.load_table(TRANSACTIONS)
    assert table.properties["akko.test.concurrent-writer"] == "3"
    assert _iceberg_digest()[:2] == (1000, 1000)
    with psycopg.connect(settings.pg_dsn, autocommit=True) as conn:  # the failed run released its lock
        assert conn.execute("SELECT pg_try_advisory_lock(%s)", (replicate_module.REPLICATE_LOCK_KEY,)).fetchone()[0]


# (c) duplicate ids ---------------------------------------------------------------------------

def test_duplicate_ids_cannot_enter_postgres(akko_env):
    settings = load_settings()
    seed_transactions(settings.pg_dsn, 1000, 6, AS_OF)
    before = _ids_digest(settings.pg_dsn)
    again = generate_transactions(10, 6, AS_OF)  # T0000000000..9 exist already
    with connect(settings.pg_dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        append_transactions(conn, iter([generate_transactions(10, 6, AS_OF, first_index=5000), again]))
    assert _ids_digest(settings.pg_dsn) == before  # the whole batch rolled back, the new rows too


# (d) + (f) known errors reach the UI as one line that names the fix ------------------------------

@pytest.mark.parametrize(
    "case, asset, expected",
    [
        ("database down", ("akko_assets.ingest.assets", "raw_transactions"),
         ["PostgreSQL is not reachable at", "port=1", "akko services up", "AKKO_PG_DSN"]),
        ("empty source", ("akko_assets.lakehouse.assets", "banking_transactions"),
         ["raw_transactions is empty: materialize postgres/raw_transactions first"]),
        ("AKKO_HOME not writable", ("akko_assets.ingest.assets", "raw_transactions"),
         ["is not writable", "point AKKO_HOME at a writable folder"]),
    ],
)
def test_known_failures_are_one_line(case, asset, expected, akko_env, monkeypatch, tmp_path):
    dsn = load_settings().pg_dsn
    if case == "database down":
        dsn = "postgresql://postgres@127.0.0.1:1/akko"
        monkeypatch.setenv("AKKO_PG_DSN", dsn)
    elif case == "empty source":
        from akko_assets.resources.postgres import ensure_database

        ensure_database(dsn)
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        monkeypatch.setenv("AKKO_HOME", str(Path(blocker) / "home"))  # root ignores chmod; a file as parent does not
    result = _materialize(*asset, dsn=dsn)
    assert not result.success
    (message,) = _failure_lines(result)
    assert all(part in message for part in expected), message
    assert "\n" not in message.split("Failure: ", 1)[-1].strip() and "Traceback" not in message, message


def test_first_processes_on_a_new_database_all_open_the_catalog(akko_env):
    """Fresh database, several processes at once (a sensor run, a manual run, a notebook): all of them
    open the SQL catalog, though they race to create its tables."""
    code = ("from akko_assets.lakehouse.catalog import open_catalog; from akko_assets.settings import load_settings; "
            "open_catalog(load_settings()); print('OK')")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
    outcomes = [p.communicate(timeout=120) for p in procs]
    assert all(out.strip() == "OK" for out, _ in outcomes), [err[-600:] for out, err in outcomes if out.strip() != "OK"]
