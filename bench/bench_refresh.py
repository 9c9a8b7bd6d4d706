"""Incremental refresh benchmark: what `incremental_refresh` costs after new rows land, against the
full `banking_fraud_demo` run measured in the same process.

    python bench/bench_refresh.py [--rows 100000] [--new-rows 1000] [--json out.json]

Uses a database and AKKO_HOME of its own (dropped/removed afterwards), runs both jobs in process
without the dashboard (Superset is not needed), and prints seconds per step for each run and the
refresh/full ratio. The refresh is what the sensor launches when new PostgreSQL rows land.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SERVER_DSN = os.environ.get("AKKO_BENCH_SERVER_DSN", "postgresql://postgres@127.0.0.1:5432")


def step_seconds(instance, run_id: str) -> dict[str, float]:
    from akko_assets.demo import _step_seconds

    return {key: round(value, 2) for key, value in _step_seconds(instance, run_id).items()}


def run_job(name: str, instance, run_config: dict | None = None) -> tuple[float, dict[str, float]]:
    from akko_assets.definitions import defs

    job = defs.resolve_job_def(name)
    keys = [k for k in job.asset_layer.selected_asset_keys if k.path[0] != "bi"]
    started = time.perf_counter()
    result = job.execute_in_process(instance=instance, asset_selection=keys, run_config=run_config, raise_on_error=True)
    return round(time.perf_counter() - started, 2), step_seconds(instance, result.run_id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--new-rows", type=int, default=1_000)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    db = f"akko_bench_refresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    try:
        with tempfile.TemporaryDirectory(prefix="akko-bench-refresh-") as home:
            os.environ.update({"AKKO_HOME": home, "AKKO_PG_DSN": f"{SERVER_DSN}/{db}", "AKKO_ROWS": str(args.rows),
                               "DAGSTER_HOME": home, "OTEL_SDK_DISABLED": "true"})
            import dagster as dg

            from akko_assets.ingest.seed import seed_transactions
            from akko_assets.settings import load_settings

            instance = dg.DagsterInstance.ephemeral()
            full_total, full_steps = run_job("banking_fraud_demo", instance)
            # A second full run: the first pays one-off costs (imports, dbt parse, MLflow store).
            full_total, full_steps = run_job("banking_fraud_demo", instance)
            settings = load_settings()
            seed_transactions(settings.pg_dsn, args.new_rows, settings.seed + 1, settings.as_of, mode="append")
            refresh_total, refresh_steps = run_job("incremental_refresh", instance)
    finally:
        with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))

    figures = {"rows": args.rows, "new_rows": args.new_rows, "full_seconds": full_total, "full_steps": full_steps,
               "refresh_seconds": refresh_total, "refresh_steps": refresh_steps,
               "refresh_over_full": round(refresh_total / full_total, 3)}
    print(f"incremental refresh benchmark: {args.rows} rows, then {args.new_rows} new rows (seconds, in process, no dashboard)")
    print(f"  {'step':<48} {'full':>8} {'refresh':>8}")
    for step in sorted(set(full_steps) | set(refresh_steps), key=lambda s: -full_steps.get(s, 0)):
        full = f"{full_steps[step]:8.2f}" if step in full_steps else f"{'-':>8}"
        refresh = f"{refresh_steps[step]:8.2f}" if step in refresh_steps else f"{'-':>8}"
        print(f"  {step:<48} {full} {refresh}")
    print(f"  {'whole run':<48} {full_total:8.2f} {refresh_total:8.2f}   refresh/full {figures['refresh_over_full']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
