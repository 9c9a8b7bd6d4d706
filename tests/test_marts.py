"""dbt marts on real data from the foundation assets (shared pipeline run)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import sqlglot

from akko_assets.ingest.generator import generate_transactions
from akko_assets.ingest.load import replace_transactions
from akko_assets.lakehouse.catalog import open_catalog
from akko_assets.lakehouse.replicate import replicate
from akko_assets.resources import dbt_subprocess_env
from akko_assets.resources.engine import connect_curated
from akko_assets.resources.postgres import connect, ensure_database
from akko_assets.settings import DBT_PROJECT_DIR, load_settings

DBT = str(Path(sys.executable).with_name("dbt"))


def _dbt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DBT, *args, "--profiles-dir", "."], cwd=DBT_PROJECT_DIR, capture_output=True, text=True,
                          env=dbt_subprocess_env(load_settings()))


def test_dbt_tests_ran_as_asset_checks_and_passed(pipeline_run):
    checks = [e.event_specific_data for e in pipeline_run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    dbt_checks = [c for c in checks if c.asset_key.path[0] in ("marts", "staging")]
    assert len(dbt_checks) >= 15 and all(c.passed for c in dbt_checks)


def test_counts_match_the_lakehouse(pipeline_run):
    con = connect_curated(load_settings())
    base = con.sql("SELECT count(*) FROM banking.transactions").fetchone()[0]
    fct = con.sql("SELECT count(*) FROM marts.fct_transactions").fetchone()[0]
    customers = con.sql("SELECT count(DISTINCT customer_id) FROM banking.transactions").fetchone()[0]
    dim = con.sql("SELECT count(*) FROM marts.dim_customers").fetchone()[0]
    assert base == fct == 20_000 and dim == customers


def test_dim_customers_matches_an_independent_computation(pipeline_run):
    con = connect_curated(load_settings())
    tx = con.sql("SELECT * FROM banking.transactions").arrow().read_all().to_pandas()
    dim = con.sql("SELECT * FROM marts.dim_customers").arrow().read_all().to_pandas().set_index("customer_id")
    sample = sorted(tx.customer_id.unique())[::97][:25]
    for cid in sample:
        rows = tx[tx.customer_id == cid].sort_values(["ts", "transaction_id"])
        got = dim.loc[cid]
        assert got.txn_count == len(rows)
        assert float(got.total_amount) == pytest.approx(float(rows.amount.astype(float).sum()), abs=0.005)
        assert got.first_seen == rows.ts.min() and got.last_seen == rows.ts.max()
        counts = rows.groupby("region").size()
        assert got.region == sorted(counts[counts == counts.max()].index)[0]
        assert got.status == rows.status.iloc[-1] and got.card_pan == rows.card_pan.iloc[-1]


def test_published_marts_are_iceberg_tables(pipeline_run):
    catalog = open_catalog(load_settings())
    names = {t[-1] for t in catalog.list_tables("marts")}
    assert {"fct_transactions", "dim_customers"} <= names
    fct = catalog.load_table("marts.fct_transactions")
    assert int(fct.current_snapshot().summary["total-records"]) == 20_000


def test_compiled_models_parse_as_trino_sql(pipeline_run):
    result = _dbt("compile", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = list((DBT_PROJECT_DIR / "target" / "compiled" / "akko" / "models").rglob("*.sql"))
    models = [p for p in compiled if p.stem in ("stg_transactions", "fct_transactions", "dim_customers")]
    assert len(models) == 3
    for path in models:
        parsed = sqlglot.parse(path.read_text(), read="trino")
        assert len(parsed) == 1 and isinstance(parsed[0], sqlglot.exp.Query), path


def test_rebuild_gives_identical_marts_and_readers_are_never_blocked(pipeline_run):
    settings = load_settings()
    dbt_file = settings.home / "dbt" / "akko.duckdb"

    def snapshot() -> pa.Table:
        with duckdb.connect(str(dbt_file), read_only=True) as con:
            return con.sql("SELECT * EXCLUDE (updated_at) FROM marts.fct_transactions ORDER BY transaction_id").arrow().read_all()

    before = snapshot()
    proc = subprocess.Popen([DBT, "build", "--profiles-dir", "."], cwd=DBT_PROJECT_DIR, env=dbt_subprocess_env(settings),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reads_during_build = 0
    while proc.poll() is None:
        con = connect_curated(settings)  # reads Iceberg, never the file dbt holds
        assert con.sql("SELECT count(*) FROM marts.fct_transactions").fetchone()[0] == 20_000
        reads_during_build += 1
        time.sleep(0.2)
    assert proc.returncode == 0, proc.stdout.read()
    assert reads_during_build >= 3
    assert snapshot().equals(before)


def _hand_built_rows() -> pa.Table:
    """Card A: a burst of 5 in one hour, then a country change. Card B: quiet."""
    base = generate_transactions(8, 1, dt.date(2026, 11, 30))
    t0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)
    minutes = [0, 10, 20, 30, 40, 24 * 60, 24 * 60 + 5, 3 * 24 * 60]
    rows = base.to_pylist()
    for i, row in enumerate(rows):
        row.update(transaction_id=f"H{i}", ts=t0 + dt.timedelta(minutes=minutes[i]), merchant="Shop", country="DE", region="EU")
        card_b = i == 7
        row.update(customer_id="CB" if card_b else "CA", card_pan="4539578763621486" if card_b else "5555555555554444")
    rows[5]["country"] = "FR"
    rows[6]["country"] = "FR"
    rows[6]["ts"] = t0 + dt.timedelta(minutes=24 * 60 + 5)
    return pa.Table.from_pylist(rows, schema=base.schema)


def test_features_on_hand_built_cases(akko_env):
    settings = load_settings()
    ensure_database(settings.pg_dsn)
    with connect(settings.pg_dsn) as conn:
        replace_transactions(conn, _hand_built_rows())
        replicate(conn, open_catalog(settings))
    result = _dbt("build", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    with duckdb.connect(str(settings.home / "dbt" / "akko.duckdb"), read_only=True) as con:
        rows = {r[0]: r[1:] for r in con.sql(
            "SELECT transaction_id, txn_count_1h, txn_count_24h, country_changed, hour_of_day, is_night "
            "FROM marts.fct_transactions").fetchall()}
    assert rows["H4"][0] == 5  # five transactions within one hour
    assert rows["H0"][0] == 1
    assert rows["H5"][1] == 6  # the 24h frame is inclusive: H0 is exactly 24h before H5
    assert rows["H6"][1] == 6  # H0 has left the frame, H6 itself is in
    assert rows["H5"][2] == 1 and rows["H6"][2] == 0 and rows["H4"][2] == 0
    assert rows["H0"][3] == 10 and rows["H0"][4] == 0
    assert rows["H7"][:3] == (1, 1, 0)
