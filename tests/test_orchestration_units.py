"""Orchestration pieces that need no webserver: job selections, the instance config, the sensor's
fault paths (real PostgreSQL, real Dagster instance), and the Airflow generator entry point."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from akko_assets.orchestration import JOBS, SCHEDULES, SENSORS, prepare_dagster_home
from akko_assets.orchestration.sensors import RefreshCursor, new_transactions_sensor
from akko_assets.resources import PostgresResource

REPO = Path(__file__).resolve().parents[1]
DEAD_DSN = "postgresql://postgres@127.0.0.1:1/akko_nowhere"  # nothing listens on port 1


def selected(job_name: str) -> set[str]:
    from akko_assets.definitions import defs

    return {k.to_user_string() for k in defs.resolve_job_def(job_name).asset_layer.selected_asset_keys}


def test_refresh_job_is_everything_downstream_of_iceberg_but_the_model() -> None:
    from akko_assets.definitions import defs

    keys = selected("incremental_refresh")
    assert {"iceberg/banking/transactions", "staging/stg_transactions", "marts/fct_transactions",
            "marts/dim_customers"} <= keys
    assert "ml/fraud_model" not in keys and "postgres/raw_transactions" not in keys
    graph = defs.resolve_asset_graph()
    # Every asset fed (transitively) by the Iceberg table is refreshed, except the model itself.
    start = dg.AssetKey(["iceberg", "banking", "transactions"])
    seen, todo = {start}, [start]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    assert keys == {k.to_user_string() for k in seen} - {"ml/fraud_model"}


def test_retrain_job_and_schedule() -> None:
    keys = selected("retrain_fraud_model")
    assert "iceberg/banking/transactions" not in keys and "postgres/raw_transactions" not in keys
    if "ml/fraud_model" in {k.to_user_string() for k in _all_keys()}:
        assert "ml/fraud_model" in keys
    (schedule,) = SCHEDULES
    assert schedule.name == "retrain_weekly" and schedule.cron_schedule == "0 3 * * 1"
    assert schedule.job_name == "retrain_fraud_model"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    (sensor,) = SENSORS
    assert sensor.name == "new_transactions_sensor" and sensor.job_name == "incremental_refresh"
    assert {j.name for j in JOBS} == {"incremental_refresh", "retrain_fraud_model"}


def _all_keys():
    from akko_assets.definitions import defs

    return defs.resolve_asset_graph().get_all_asset_keys()


def test_dagster_home_has_one_slot_per_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from akko_assets.settings import load_settings

    monkeypatch.setenv("AKKO_HOME", str(tmp_path / "home"))
    home = prepare_dagster_home(load_settings())
    assert home == tmp_path / "home" / "dagster" and (home / "dagster.yaml").exists()
    mtime = (home / "dagster.yaml").stat().st_mtime_ns
    assert prepare_dagster_home(load_settings()) == home
    assert (home / "dagster.yaml").stat().st_mtime_ns == mtime  # unchanged content is not rewritten

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity.value == "op"
        assert config.run_queue_config.max_concurrent_runs == 2
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    finally:
        instance.dispose()


def test_dagster_home_unwritable_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from akko_assets.settings import SettingsError, load_settings

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AKKO_HOME", str(blocker))
    with pytest.raises(SettingsError, match="AKKO_HOME"):
        prepare_dagster_home(load_settings())


def _tick(instance: dg.DagsterInstance, dsn: str, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"postgres": PostgresResource(dsn=dsn)})
    return new_transactions_sensor(context)


def test_sensor_waits_for_a_first_full_run(fresh_db: str) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, fresh_db, None)
    assert not result.run_requests
    assert "never been materialized" in result.skip_reason.skip_message
    assert "banking_fraud_demo" in result.skip_reason.skip_message


def test_sensor_skips_with_reason_when_postgres_is_down_or_empty(fresh_db: str) -> None:
    cursor = RefreshCursor(processed="2026-11-30T00:00:00+00:00").dump()
    with dg.DagsterInstance.ephemeral() as instance:
        down = _tick(instance, DEAD_DSN, cursor)
        missing = _tick(instance, fresh_db, cursor)
        garbled = _tick(instance, DEAD_DSN, "{not json")
    assert not down.run_requests and down.cursor == cursor
    assert "not reachable at" in down.skip_reason.skip_message and "akko services up" in down.skip_reason.skip_message
    assert "missing or empty" in missing.skip_reason.skip_message and not missing.run_requests
    # An unreadable cursor re-baselines instead of failing every tick.
    assert "never been materialized" in garbled.skip_reason.skip_message


def test_sensor_requests_one_run_for_rows_past_the_mark(fresh_db: str) -> None:
    from akko_assets.ingest.seed import seed_transactions

    seed_transactions(fresh_db, 300, 5, dt.date(2026, 11, 30), mode="replace")
    with psycopg.connect(fresh_db) as conn:
        (mark,) = conn.execute("SELECT max(updated_at) FROM akko.raw_transactions").fetchone()
    cursor = RefreshCursor(processed=mark.isoformat()).dump()
    with dg.DagsterInstance.ephemeral() as instance:
        idle = _tick(instance, fresh_db, cursor)
        assert not idle.run_requests and "no new rows" in idle.skip_reason.skip_message
        seed_transactions(fresh_db, 40, 6, dt.date(2026, 11, 30), mode="append")
        tick = _tick(instance, fresh_db, cursor)
        assert len(tick.run_requests) == 1
        assert tick.run_requests[0].tags["akko/new_rows"] == "40"
        state = RefreshCursor.load(tick.cursor)
        assert state.processed == mark.isoformat() and state.requested == tick.run_requests[0].tags["akko/source_mark"]
        # The requested run never showed up (e.g. deleted): the next tick asks again, same run key.
        again = _tick(instance, fresh_db, tick.cursor)
        assert [r.run_key for r in again.run_requests] == [tick.run_requests[0].run_key]


def test_generate_transactions_script(fresh_db: str) -> None:
    script = REPO / "airflow" / "scripts" / "generate_transactions.py"
    env = {**os.environ, "AKKO_PG_DSN": fresh_db, "AKKO_AS_OF": "2026-11-30"}
    first = subprocess.run([sys.executable, str(script), "--rows", "25", "--seed", "1"], env=env,
                           capture_output=True, text=True, cwd="/", timeout=120)
    assert first.returncode == 0, first.stderr
    assert "wrote 25 rows" in first.stdout and "table has 25" in first.stdout
    second = subprocess.run([sys.executable, str(script), "--rows", "10"], env=env, capture_output=True, text=True, timeout=120)
    assert "table has 35" in second.stdout, second.stderr
    down = subprocess.run([sys.executable, str(script), "--rows", "10"], env={**env, "AKKO_PG_DSN": DEAD_DSN},
                          capture_output=True, text=True, timeout=120)
    assert down.returncode == 2 and "not reachable" in down.stderr and "Traceback" not in down.stderr
