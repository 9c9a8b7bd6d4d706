"""Spark vs pyiceberg replication, same run, same source.

    python bench/bench_spark.py [--rows 100000] [--changes 1000] [--json]

Seeds `--rows` transactions into a temporary PostgreSQL database, then replicates them with both
replicators into two separate Iceberg catalogs (pyiceberg: catalog tables in the source database;
Spark: catalog tables in a second database), so neither sees the other's table:
  * full load of all rows (Spark: first run in a fresh JVM = "cold", then again on a new table = "warm");
  * an incremental run of `--changes` rows: half updates of existing rows (a fifth of them move
    region), half new rows;
  * a no-op rerun.
Reports seconds per step, Spark session start-up, and peak RSS of the JVM and of Python.
Needs `bash scripts/setup_spark.sh`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVER = os.environ.get("AKKO_BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
AS_OF = dt.date(2026, 11, 30)


def _admin(sql: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def _jvm_peak_rss_mb(spark) -> float | None:
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO if os.environ.get("AKKO_BENCH_VERBOSE") else logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    source_db, spark_db = f"akko_bench_spark_{tag}", f"akko_bench_spark_cat_{tag}"
    home = Path(tempfile.mkdtemp(prefix="akko-bench-spark-"))
    for db in (source_db, spark_db):
        _admin(f'CREATE DATABASE "{db}"')
    os.environ.update(AKKO_PG_DSN=f"{SERVER}/{source_db}", AKKO_HOME=str(home), AKKO_AS_OF=AS_OF.isoformat())
    for var in ("AKKO_ICEBERG_WAREHOUSE", "AKKO_ICEBERG_CATALOG_URI", "AKKO_S3_ENDPOINT", "SPARK_REMOTE"):
        os.environ.pop(var, None)

    from akko_assets.ingest.seed import seed_transactions
    from akko_assets.lakehouse.catalog import TRANSACTIONS, open_catalog
    from akko_assets.lakehouse.replicate import replicate
    from akko_assets.lakehouse.spark import replicate_with_spark, spark_session
    from akko_assets.settings import load_settings

    figures: dict[str, object] = {"rows": args.rows, "changes": args.changes, "cpus": os.cpu_count(),
                                  "load_avg_at_start": round(os.getloadavg()[0], 2)}
    try:
        py_settings = load_settings()
        spark_settings = dataclasses.replace(
            py_settings,
            iceberg_catalog_uri=f"{SERVER}/{spark_db}".replace("postgresql://", "postgresql+psycopg://", 1),
            iceberg_warehouse=(home / "warehouse-spark").as_uri(),
        )
        seed_transactions(py_settings.pg_dsn, args.rows, 42, AS_OF)

        def pyiceberg_run(full: bool = False):
            with psycopg.connect(py_settings.pg_dsn) as conn:
                return replicate(conn, open_catalog(py_settings), full=full)

        t0 = time.perf_counter()
        spark = spark_session(spark_settings)
        figures["spark_session_start_s"] = round(time.perf_counter() - t0, 2)

        results = {}
        results["full_pyiceberg"] = pyiceberg_run()
        results["full_spark_cold"] = replicate_with_spark(spark_settings, spark=spark)
        open_catalog(spark_settings).drop_table(TRANSACTIONS)
        results["full_spark_warm"] = replicate_with_spark(spark_settings, spark=spark)

        half = args.changes // 2
        with psycopg.connect(py_settings.pg_dsn) as conn:
            conn.execute(
                "UPDATE akko.raw_transactions SET amount = amount + 1, "
                "region = CASE WHEN random() < 0.2 THEN 'MEA' ELSE region END, updated_at = clock_timestamp() "
                "WHERE transaction_id IN (SELECT transaction_id FROM akko.raw_transactions ORDER BY random() LIMIT %s)",
                (half,),
            )
        seed_transactions(py_settings.pg_dsn, args.changes - half, 43, AS_OF, mode="append")
        results["incremental_pyiceberg"] = pyiceberg_run()
        results["incremental_spark"] = replicate_with_spark(spark_settings, spark=spark)
        results["noop_pyiceberg"] = pyiceberg_run()
        results["noop_spark"] = replicate_with_spark(spark_settings, spark=spark)

        a = open_catalog(py_settings).load_table(TRANSACTIONS).scan().to_arrow().sort_by("transaction_id")
        b = open_catalog(spark_settings).load_table(TRANSACTIONS).scan().to_arrow().sort_by("transaction_id")
        figures["tables_equal"] = a.equals(b)
        figures["steps"] = {
            name: {"seconds": r.seconds, "mode": r.mode, "read": r.source_rows_read, "inserted": r.rows_inserted,
                   "updated": r.rows_updated, "table_rows": r.table_rows}
            for name, r in results.items()
        }
        figures["jvm_peak_rss_mb"] = _jvm_peak_rss_mb(spark)
        figures["python_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        figures["load_avg_at_end"] = round(os.getloadavg()[0], 2)
    finally:
        for db in (source_db, spark_db):
            _admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        shutil.rmtree(home, ignore_errors=True)

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"rows={args.rows} changes={args.changes} cpus={figures['cpus']} "
          f"load avg {figures['load_avg_at_start']} -> {figures['load_avg_at_end']}")
    print(f"spark session start: {figures['spark_session_start_s']} s; JVM peak RSS {figures['jvm_peak_rss_mb']} MB; "
          f"python peak RSS {figures['python_peak_rss_mb']} MB; tables equal: {figures['tables_equal']}")
    print(f"{'step':<24}{'mode':<13}{'read':>8}{'inserted':>10}{'updated':>9}{'rows':>9}{'seconds':>9}")
    for name, s in figures["steps"].items():
        print(f"{name:<24}{s['mode']:<13}{s['read']:>8}{s['inserted']:>10}{s['updated']:>9}{s['table_rows']:>9}"
              f"{s['seconds']:>9.2f}")


if __name__ == "__main__":
    main()
