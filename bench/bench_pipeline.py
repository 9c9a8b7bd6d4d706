"""Pipeline benchmark: each stage at AKKO_ROWS rows, with the baseline it is compared to measured
in the same run (a naive per-row Faker loop, executemany, a scalar per-row UDF).

    python bench/bench_pipeline.py [--rows 100000] [--json out.json]

Uses its own PostgreSQL database (akko_bench) and a temporary AKKO_HOME; prints a table and, with
--json, writes the figures for bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

AS_OF = dt.date(2026, 11, 30)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __init__(self, figures: dict, name: str):
        self.figures, self.name = figures, name

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.figures[self.name] = round(self.seconds, 3)
        print(f"{self.name:55} {self.seconds:9.3f} s   (peak RSS {peak_rss_mb():7.0f} MB)", flush=True)


def naive_faker_rows(n: int, seed: int) -> list[dict]:
    """The baseline the vectorised generator replaces: one Faker call chain per row."""
    from faker import Faker

    fake = Faker()
    fake.seed_instance(seed)
    rows = []
    for i in range(n):
        rows.append({
            "transaction_id": f"T{i:010d}", "customer_id": f"C{fake.random_int(0, 2500):07d}",
            "customer_name": fake.name(), "card_pan": fake.credit_card_number(card_type="visa16"),
            "amount": round(fake.pyfloat(min_value=1, max_value=500), 2), "currency": "EUR",
            "merchant": fake.company(), "merchant_category": fake.random_element(["grocery", "fuel", "travel"]),
            "channel": fake.random_element(["online", "pos", "atm"]), "region": fake.random_element(["EU", "NA"]),
            "country": fake.country_code(), "status": "active", "memo": fake.sentence(),
            "ts": fake.date_time_between(start_date="-90d", tzinfo=dt.timezone.utc), "is_fraud": False,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = args.rows
    server = os.environ.get("AKKO_BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
    home = Path(tempfile.mkdtemp(prefix="akko-bench-"))
    os.environ.update(AKKO_HOME=str(home), AKKO_PG_DSN=f"{server}/akko_bench", AKKO_AS_OF=AS_OF.isoformat(),
                      AKKO_ROWS=str(rows), AKKO_SEED="42")

    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS akko_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE akko_bench")

    from akko_assets.ingest.generator import generate_transactions
    from akko_assets.ingest.load import ensure_schema, insert_transactions_rowwise, replace_transactions
    from akko_assets.ingest.seed import seed_transactions
    from akko_assets.lakehouse.catalog import open_catalog
    from akko_assets.lakehouse.replicate import replicate
    from akko_assets.resources.postgres import connect
    from akko_assets.settings import load_settings

    settings = load_settings()
    figures: dict[str, float] = {"rows": rows}
    print(f"AKKO pipeline benchmark: {rows} rows, {os.cpu_count()} cores, AKKO_HOME={home}\n")

    # 1. generation: vectorised vs naive Faker loop (baseline on 10 000 rows, scaled)
    with Timer(figures, "generate (vectorised)"):
        table = generate_transactions(rows, 42, AS_OF)
    baseline_rows = min(rows, 10_000)
    with Timer(figures, f"generate (naive Faker loop, {baseline_rows} rows)") as naive:
        naive_faker_rows(baseline_rows, 42)
    figures["generate_rows_per_s"] = round(rows / figures["generate (vectorised)"])
    figures["naive_rows_per_s"] = round(baseline_rows / naive.seconds)
    figures["generate_speedup"] = round(figures["generate_rows_per_s"] / figures["naive_rows_per_s"], 1)

    # 2. loading: COPY vs executemany (same rows, same table)
    with connect(settings.pg_dsn) as conn:
        ensure_schema(conn)
        conn.commit()
        with Timer(figures, "load with COPY"):
            replace_transactions(conn, table)
        sample = table.slice(0, min(rows, 20_000))
        conn.execute("TRUNCATE akko.raw_transactions")
        conn.commit()
        with Timer(figures, f"load with executemany ({sample.num_rows} rows)") as many:
            insert_transactions_rowwise(conn, sample)
    figures["copy_rows_per_s"] = round(rows / figures["load with COPY"])
    figures["executemany_rows_per_s"] = round(sample.num_rows / many.seconds)
    figures["copy_speedup"] = round(figures["copy_rows_per_s"] / figures["executemany_rows_per_s"], 1)

    # 3. replication: full and incremental
    with Timer(figures, "seed_transactions (generate + COPY)"):
        seed_transactions(settings.pg_dsn, rows, 42, AS_OF)
    catalog = open_catalog(settings)
    with connect(settings.pg_dsn) as conn, Timer(figures, "replicate full"):
        replicate(conn, catalog)
    seed_transactions(settings.pg_dsn, 1000, 43, AS_OF, mode="append")
    with connect(settings.pg_dsn) as conn, Timer(figures, "replicate incremental (1 000 new rows)"):
        result = replicate(conn, catalog)
    assert result.rows_inserted == 1000, result

    # 4. dbt build + publish to Iceberg
    from akko_assets.marts.publish import publish_marts
    from akko_assets.resources import dbt_duckdb_path, dbt_subprocess_env
    from akko_assets.settings import DBT_PROJECT_DIR

    duckdb_path = dbt_duckdb_path(settings)
    dbt = str(Path(sys.executable).with_name("dbt"))
    with Timer(figures, "dbt build (3 models, 17 tests)"):
        subprocess.run([dbt, "build", "--profiles-dir", ".", "--quiet"], cwd=DBT_PROJECT_DIR, check=True,
                       env=dbt_subprocess_env(settings))
    with Timer(figures, "publish marts to Iceberg"):
        publish_marts(duckdb_path, catalog)

    # 5. model training and MLflow logging
    from akko_assets.ml.registry import log_and_register
    from akko_assets.ml.train import feature_matrix, load_training_table, train
    from akko_assets.resources.engine import connect_curated

    training = load_training_table(connect_curated(settings))
    with Timer(figures, "train Isolation Forest (200 trees)"):
        trained = train(training, seed=42)
    with Timer(figures, "MLflow log + register"):
        log_and_register(trained, feature_matrix(training), settings.home, {"bench": True})
    figures["roc_auc"] = round(trained.metrics["roc_auc"], 4)

    # 6. enrichment: the vectorised functions vs a scalar per-row UDF, same statement
    from duckdb.sqltypes import DOUBLE, VARCHAR

    from akko_assets.enrich.udfs import enrich, enrichment_sql
    from akko_assets.ml.registry import load_production_model_data
    from trino_udfs.akko_ai_anomaly import make_scorer
    from trino_udfs.akko_ai_sentiment import akko_ai_sentiment

    data = load_production_model_data(settings.home)
    with Timer(figures, "enrich (one statement, vectorised UDFs)"):
        enriched = enrich(connect_curated(settings), data)
    scalar_con = connect_curated(settings)
    scorer = make_scorer(data)
    scalar_con.create_function("akko_ai_anomaly", scorer, [DOUBLE] * 8, DOUBLE,
                               null_handling="special", side_effects=False)
    scalar_con.create_function("akko_ai_sentiment", akko_ai_sentiment, [VARCHAR], DOUBLE,
                               null_handling="special")
    with Timer(figures, "enrich (same statement, scalar per-row UDFs)"):
        scalar_con.execute(enrichment_sql(), {"threshold": data["threshold"]}).fetch_arrow_table()
    figures["enrich_speedup"] = round(figures["enrich (same statement, scalar per-row UDFs)"]
                                      / figures["enrich (one statement, vectorised UDFs)"], 1)
    assert enriched.num_rows == rows + 1000
    figures["peak_rss_mb"] = round(peak_rss_mb())

    print()
    print(f"generator: {figures['generate_rows_per_s']:,} rows/s vs naive Faker {figures['naive_rows_per_s']:,} rows/s "
          f"-> {figures['generate_speedup']}x (target >= 10x)")
    print(f"COPY: {figures['copy_rows_per_s']:,} rows/s vs executemany {figures['executemany_rows_per_s']:,} rows/s "
          f"-> {figures['copy_speedup']}x (target >= 5x)")
    print(f"enrichment: vectorised {figures['enrich_speedup']}x faster than scalar per-row UDFs")
    print(f"peak RSS: {figures['peak_rss_mb']} MB; ROC-AUC {figures['roc_auc']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS akko_bench WITH (FORCE)")


if __name__ == "__main__":
    main()
