"""Spark replicator (JDBC read + MERGE INTO) on real PostgreSQL and real Iceberg files, checked
against pyiceberg and DuckDB reading the same table. One local Spark JVM for the whole module."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from malformed_rows import MALFORMED, MALFORMED_COUNTS

from akko_assets.ingest.generator import generate_transactions
from akko_assets.ingest.seed import seed_transactions
from akko_assets.lakehouse import spark as spark_mod
from akko_assets.lakehouse.catalog import TRANSACTIONS, open_catalog
from akko_assets.lakehouse.replicate import EmptySource, replicate, validate
from akko_assets.lakehouse.spark import (
    SparkSetupError,
    replicate_with_spark,
    spark_session,
)
from akko_assets.resources.engine import connect_curated
from akko_assets.resources.postgres import connect, ensure_database
from akko_assets.settings import load_settings

pytestmark = pytest.mark.spark

AS_OF = dt.date(2026, 11, 30)
SERVER_DSN = os.environ.get("AKKO_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")


def _setup_missing() -> str | None:
    try:
        spark_mod.check_setup()
    except SparkSetupError as exc:
        return f"{exc} (the Spark path is optional: bash scripts/setup_spark.sh installs it)"
    return None


@pytest.fixture(scope="module", autouse=True)
def _spark_available():
    reason = _setup_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def seeded(akko_env):
    settings = load_settings()
    seed_transactions(settings.pg_dsn, 3000, 5, AS_OF)
    return settings


@pytest.fixture
def second_catalog(seeded):
    """Settings whose Iceberg catalog tables and warehouse live elsewhere (same source database)."""
    name = f"akko_test_spark_cat_{uuid.uuid4().hex[:8]}"
    dsn = f"{SERVER_DSN}/{name}"
    ensure_database(dsn)
    other = dataclasses.replace(
        seeded,
        iceberg_catalog_uri=dsn.replace("postgresql://", "postgresql+psycopg://", 1),
        iceberg_warehouse=(seeded.home / "warehouse-2").as_uri(),
    )
    yield other
    with connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _table(settings) -> pa.Table:
    return open_catalog(settings).load_table(TRANSACTIONS).scan().to_arrow().sort_by("transaction_id")


def _execute(settings, statement: str) -> None:
    with connect(settings.pg_dsn) as conn:
        conn.execute(statement)
        conn.commit()


def test_full_merge_rerun_partitions_and_readers(seeded):
    first = replicate_with_spark(seeded)
    second = replicate_with_spark(seeded)
    assert (first.mode, first.source_rows_read, first.rows_inserted, first.table_rows) == ("full", 3000, 3000, 3000)
    # Rerun: nothing read, nothing written, not even a new snapshot.
    assert (second.mode, second.source_rows_read, second.rows_written) == ("incremental", 0, 0)
    assert second.snapshot_id == first.snapshot_id

    table = open_catalog(seeded).load_table(TRANSACTIONS)
    rows = table.scan().to_arrow()
    assert rows.num_rows == 3000 and pc.count_distinct(rows.column("transaction_id")).as_py() == 3000
    files = list(table.scan().plan_files())
    assert {f.file.partition[0] for f in files} == {"EU", "NA", "APAC", "LATAM", "MEA"}
    assert all(f"region={f.file.partition[0]}" in f.file.file_path for f in files)
    assert [(table.schema().find_field(f.source_id).name, str(f.transform)) for f in table.spec().fields] == [
        ("region", "identity")]

    con = connect_curated(seeded)  # DuckDB's Iceberg extension reads the Spark-written metadata
    assert con.sql("SELECT count(*), count(DISTINCT transaction_id) FROM banking.transactions").fetchone() == (3000, 3000)
    by_region = dict(con.sql("SELECT region, count(*) FROM banking.transactions GROUP BY 1").fetchall())
    expected = dict(zip(*np.unique(rows.column("region").to_numpy(zero_copy_only=False), return_counts=True)))
    assert by_region == {k: int(v) for k, v in expected.items()}


def test_updates_move_partitions_and_new_rows_arrive(seeded):
    replicate_with_spark(seeded)
    _execute(seeded, "UPDATE akko.raw_transactions SET amount = 12345.67, region = 'MEA', country = 'AE', "
                     "updated_at = clock_timestamp() WHERE transaction_id IN ('T0000000001', 'T0000000002')")
    seed_transactions(seeded.pg_dsn, 1000, 6, AS_OF, mode="append")
    result = replicate_with_spark(seeded)
    assert (result.mode, result.source_rows_read, result.rows_updated, result.rows_inserted, result.table_rows) == (
        "incremental", 1002, 2, 1000, 4000)

    table = open_catalog(seeded).load_table(TRANSACTIONS)
    changed = table.scan(row_filter="amount = 12345.67").to_arrow()
    assert sorted(changed.column("transaction_id").to_pylist()) == ["T0000000001", "T0000000002"]
    assert set(changed.column("region").to_pylist()) == {"MEA"}
    # The moved rows physically live in region=MEA data files now (copy-on-write: no delete files).
    moved = {"T0000000001", "T0000000002"}
    in_mea: set[str] = set()
    for task in table.scan().plan_files():
        assert not task.delete_files
        ids = set(pq.read_table(urlparse(task.file.file_path).path, columns=["transaction_id"])
                  .column("transaction_id").to_pylist())
        if task.file.partition[0] == "MEA":
            in_mea |= ids
        else:
            assert not moved & ids, task.file.file_path
    assert moved <= in_mea
    ids = table.scan().to_arrow().column("transaction_id")
    assert len(ids) == 4000 and pc.count_distinct(ids).as_py() == 4000
    with connect(seeded.pg_dsn) as conn:
        mark = conn.execute("SELECT max(updated_at) FROM akko.raw_transactions").fetchone()[0]
    assert result.high_water_mark == mark.isoformat()


def test_spark_and_pyiceberg_paths_produce_the_same_table(seeded, second_catalog):
    _execute(seeded, MALFORMED)
    with connect(seeded.pg_dsn) as conn:
        pyice = replicate(conn, open_catalog(seeded))
    spark_full = replicate_with_spark(second_catalog)  # its own catalog DB + warehouse, same source
    assert pyice.rejected == spark_full.rejected == MALFORMED_COUNTS
    assert _table(seeded).equals(_table(second_catalog))

    # Changes: rows move region, new rows, a valid row turns invalid (must leave both tables).
    _execute(seeded, "UPDATE akko.raw_transactions SET region = 'LATAM', amount = amount + 1, "
                     "updated_at = clock_timestamp() WHERE transaction_id IN ('T0000000010', 'T0000000011')")
    _execute(seeded, "UPDATE akko.raw_transactions SET amount = -1, updated_at = clock_timestamp() "
                     "WHERE transaction_id = 'T0000000020'")
    # Appends continue after the latest ts: drop the future-dated malformed row first (it never reached Iceberg).
    _execute(seeded, "DELETE FROM akko.raw_transactions WHERE transaction_id = 'BAD4'")
    seed_transactions(seeded.pg_dsn, 500, 8, AS_OF, mode="append")
    with connect(seeded.pg_dsn) as conn:
        pyice = replicate(conn, open_catalog(seeded))
    spark_inc = replicate_with_spark(second_catalog)
    assert (spark_inc.mode, spark_inc.rows_inserted, spark_inc.rows_updated) == ("incremental", 500, 2), (spark_inc, pyice)
    assert (pyice.rows_inserted, pyice.rows_updated) == (500, 2)
    assert pyice.rejected == spark_inc.rejected == {"negative amount": 1}
    a, b = _table(seeded), _table(second_catalog)
    assert a.num_rows == 3499 and a.equals(b)
    # Both engines quarantine byte-identical rows: the rejects table holds each once.
    with connect(seeded.pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM akko.raw_transactions_rejects").fetchone()[0] == 6


def test_pyiceberg_writes_spark_reads_and_continues(seeded):
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, open_catalog(seeded))
    spark = spark_session(seeded)
    arrow = _table(seeded)
    got = spark.sql("SELECT count(*) AS n, sum(amount) AS total, count(DISTINCT region) AS regions "
                    "FROM akko.banking.transactions").first()
    assert (got["n"], got["total"], got["regions"]) == (3000, pc.sum(arrow.column("amount")).as_py(), 5)

    # pyiceberg commits again: Spark sees it at once (catalog caching is off).
    _execute(seeded, "UPDATE akko.raw_transactions SET amount = 777.77, updated_at = clock_timestamp() "
                     "WHERE transaction_id = 'T0000000003'")
    with connect(seeded.pg_dsn) as conn:
        replicate(conn, open_catalog(seeded))
    assert spark.sql("SELECT amount FROM akko.banking.transactions WHERE transaction_id = 'T0000000003'").first()[0] \
        == pa.scalar(777.77).cast(pa.decimal128(12, 2)).as_py()

    # Switching replicators keeps the high-water mark: Spark merges only what pyiceberg has not.
    seed_transactions(seeded.pg_dsn, 200, 9, AS_OF, mode="append")
    result = replicate_with_spark(seeded)
    assert (result.mode, result.source_rows_read, result.rows_inserted, result.table_rows) == ("incremental", 200, 200, 3200)
    with connect(seeded.pg_dsn) as conn:
        back = replicate(conn, open_catalog(seeded))
    assert (back.mode, back.source_rows_read) == ("incremental", 0)


def test_reseed_mirrors_the_new_source(seeded):
    replicate_with_spark(seeded)
    seed_transactions(seeded.pg_dsn, 1200, 9, AS_OF)  # replace: new generation, fewer rows
    result = replicate_with_spark(seeded)
    assert (result.mode, result.source_rows_read, result.table_rows) == ("full", 1200, 1200)
    with connect(seeded.pg_dsn) as conn:
        source = sorted(r[0] for r in conn.execute("SELECT transaction_id FROM akko.raw_transactions"))
    assert _table(seeded).column("transaction_id").to_pylist() == source


def test_spark_rules_match_validate():
    """The Spark SQL rules give every row the reason replicate.validate gives it."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    table = generate_transactions(2000, 3, AS_OF)
    rng = np.random.default_rng(1)
    pans = table.column("card_pan").to_pylist()
    regions = table.column("region").to_pylist()
    amounts = table.column("amount").to_pylist()
    ts = table.column("ts").to_pylist()
    for i in rng.choice(2000, 300, replace=False):
        kind = i % 9
        if kind == 0:
            pans[i] = pans[i][:-1] + str((int(pans[i][-1]) + 1) % 10)  # Luhn broken
        elif kind == 1:
            pans[i] = pans[i][:15]
        elif kind == 2:
            pans[i] = "45395787636214a6" if i % 2 else None
        elif kind == 3:
            regions[i] = None if i % 2 else "na"
        elif kind == 4:
            amounts[i] = None
        elif kind == 5:
            amounts[i] = -amounts[i] if amounts[i] else None
        elif kind == 6:
            ts[i] = None if i % 2 else now + dt.timedelta(days=1, seconds=1)
        elif kind == 7:
            ts[i] = now + dt.timedelta(days=1)  # exactly at the limit: still valid
        else:
            regions[i], amounts[i] = "XX", None  # two faults: the first rule names the reason
    table = table.set_column(table.schema.get_field_index("card_pan"), "card_pan", pa.array(pans, pa.string()))
    table = table.set_column(table.schema.get_field_index("region"), "region", pa.array(regions, pa.string()))
    table = table.set_column(table.schema.get_field_index("amount"), "amount", pa.array(amounts, pa.decimal128(12, 2)))
    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array(ts, pa.timestamp("us", tz="UTC")))
    _, rejected, counts = validate(table, now)
    expected = dict(zip(rejected.column("transaction_id").to_pylist(), rejected.column("reason").to_pylist()))
    assert len(counts) == 6 - 1  # every reason but "null transaction_id" occurs

    spark = spark_session(load_settings())
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    frame = spark.createDataFrame(table.to_pandas())
    got = {r[0]: r[1] for r in frame.selectExpr("transaction_id", f"{spark_mod.reason_sql(now)} AS reason")
           .where("reason IS NOT NULL").collect()}
    assert got == expected


def test_empty_source_has_the_seed_message(akko_env):
    settings = load_settings()
    with pytest.raises(EmptySource, match="raw_transactions is empty: materialize postgres/raw_transactions first"):
        replicate_with_spark(settings)


def test_missing_pieces_fail_with_the_fix(akko_env, tmp_path, monkeypatch):
    settings = load_settings()
    monkeypatch.setenv("AKKO_SPARK_JDBC_JAR", str(tmp_path / "postgresql.jar"))
    with pytest.raises(SparkSetupError, match=r"postgresql\.jar is missing .*libpostgresql-jdbc-java.*setup_spark\.sh"):
        spark_session(settings)
    with pytest.raises(SparkSetupError, match=r"postgresql\.jar is missing"):
        replicate_with_spark(settings)  # before it touches PostgreSQL or the catalog:
    with connect(settings.pg_dsn) as conn:
        assert conn.execute("SELECT to_regclass('iceberg_tables'), to_regclass('akko.raw_transactions')").fetchone() \
            == (None, None)
    monkeypatch.delenv("AKKO_SPARK_JDBC_JAR")
    monkeypatch.setenv("AKKO_SPARK_JARS", str(tmp_path))
    with pytest.raises(SparkSetupError, match=r"iceberg-spark-runtime-3\.5_2\.12-1\.10\.2\.jar is missing: run `bash scripts/setup_spark\.sh`"):
        spark_session(settings)
    monkeypatch.delenv("AKKO_SPARK_JARS")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(SparkSetupError, match="JAVA_HOME=.*no-jdk has no bin/java"):
        spark_session(settings)
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SparkSetupError, match="Java not found"):
        spark_mod.java_executable()


def test_runtime_without_its_jackson_names_the_jar(akko_env, tmp_path):
    """The seed's `NoClassDefFoundError` (runtime jar without its shaded Jackson), in a JVM of its own."""
    seed_transactions(load_settings().pg_dsn, 20, 5, AS_OF)
    jars = tmp_path / "jars"
    jars.mkdir()
    (jars / spark_mod.RUNTIME_JAR).symlink_to(spark_mod.jars_dir() / spark_mod.RUNTIME_JAR)
    # An empty stand-in for the relocated Jackson jar: present, so the file check passes, but without classes.
    import zipfile

    with zipfile.ZipFile(jars / spark_mod.SHADED_JACKSON_JAR, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    script = textwrap.dedent("""
        from akko_assets.lakehouse.spark import SparkSetupError, replicate_with_spark
        from akko_assets.settings import load_settings
        try:
            replicate_with_spark(load_settings())
        except SparkSetupError as exc:
            print("ERROR:", exc)
    """)
    env = {**os.environ, "AKKO_SPARK_JARS": str(jars)}
    out = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True, timeout=180,
                         cwd=Path(__file__).resolve().parent.parent)
    line = next((l for l in out.stdout.splitlines() if l.startswith("ERROR:")), out.stdout + out.stderr[-2000:])
    assert "NoClassDefFoundError" in line and "fasterxml" in line, line
    assert spark_mod.SHADED_JACKSON_JAR in line and "bash scripts/setup_spark.sh" in line, line
    assert "\n" not in line.strip()


def test_unreachable_spark_connect_fails_fast(akko_env, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("SPARK_REMOTE", f"sc://127.0.0.1:{port}")
    assert spark_mod.catalog_name() == "iceberg"  # the catalog name of the k8s Spark Connect server
    with pytest.raises(SparkSetupError, match=f"Spark Connect server sc://127.0.0.1:{port} is not reachable"):
        spark_session(load_settings())
    monkeypatch.setenv("SPARK_REMOTE", "http://spark:15002")
    with pytest.raises(SparkSetupError, match="not a Spark Connect URL"):
        spark_session(load_settings())


def test_dagster_pyspark_resource_runs_the_replication(seeded, tmp_path):
    """Classic local Spark through dagster-pyspark's PySparkResource, in a run process of its own
    (as Dagster's multiprocess executor would start it), configured by spark_conf(settings)."""
    script = textwrap.dedent("""
        import dagster as dg
        from dagster_pyspark import PySparkResource
        from akko_assets.lakehouse.spark import replicate_with_spark, spark_conf
        from akko_assets.settings import load_settings

        settings = load_settings()

        @dg.asset
        def replicated(pyspark: PySparkResource) -> dg.MaterializeResult:
            result = replicate_with_spark(settings, spark=pyspark.spark_session)
            return dg.MaterializeResult(metadata={"mode": result.mode, "rows": result.table_rows})

        run = dg.materialize([replicated], resources={"pyspark": PySparkResource(spark_config=spark_conf(settings))})
        meta = run.asset_materializations_for_node("replicated")[0].metadata
        print("RESULT", meta["mode"].value, meta["rows"].value)
    """)
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=180,
                         cwd=Path(__file__).resolve().parent.parent)
    assert "RESULT full 3000" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    assert open_catalog(seeded).load_table(TRANSACTIONS).scan().to_arrow().num_rows == 3000
