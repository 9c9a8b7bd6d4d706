"""SIGKILL at seeded random points of each writing asset, then a rerun: nothing lost, nothing doubled.

Each materialization runs in a process forked from a "zygote" that imported the Dagster definitions
once (imports take longer than most of the assets). The zygote kills the run's whole process group
(the dbt subprocess too, as when a pod or container is killed) after a seeded delay, drawn as a
fraction of the asset's measured clean duration. After every kill the curated tables must still be
duplicate-free and the source complete; after every rerun each table must hold exactly the rows of
PostgreSQL (same transaction ids, compared by digest) and `banking-fraud@production` must load.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SERVER_DSN = os.environ.get("AKKO_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
ROWS = 3000
SEED = 20261130  # seeds the kill points; a failure names the point so it can be replayed
POINTS = {"raw": 2, "iceberg": 2, "dbt": 2, "model": 2, "enriched": 2}  # two seeded points each keep the file near 4 min

ZYGOTE = textwrap.dedent(
    """
    import json, os, signal, sys, time
    import dagster as dg
    from akko_assets.definitions import defs
    # Warm what the assets import lazily, so each forked run pays only for its own work.
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot, mlflow, mlflow.sklearn, sklearn.ensemble
    from akko_assets.ingest.generator import build_pools; build_pools(0, 50)

    job = defs.resolve_job_def("banking_fraud_demo")
    ALL = job.asset_layer.asset_graph.get_all_asset_keys()
    SELECT = {
        "raw": [dg.AssetKey(["postgres", "raw_transactions"])],
        "iceberg": [dg.AssetKey(["iceberg", "banking", "transactions"])],
        "dbt": [k for k in ALL if k.path[0] in ("staging", "marts") and k.path[-1] != "enriched_transactions"],
        "model": [dg.AssetKey(["ml", "fraud_model"])],
        "enriched": [dg.AssetKey(["marts", "enriched_transactions"])],
    }

    def materialize(name, out_fd):
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=SELECT[name],
                                        raise_on_error=False)
        failures = [e.event_specific_data.error.message.strip().splitlines()[0]
                    for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        os.write(out_fd, json.dumps({"success": result.success, "failures": failures}).encode())

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the run: its own process group, so a kill takes dbt down with it
            os.setpgid(0, 0)
            os.close(read_fd)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # the zygote's stdout carries only its replies
            os.dup2(devnull, 2)
            try:
                materialize(cmd["asset"], write_fd)
            finally:
                os._exit(0)
        os.close(write_fd)
        killed, status = False, None
        while status is None:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
            elif cmd["delay"] is not None and time.monotonic() - started >= cmd["delay"]:
                os.killpg(pid, signal.SIGKILL)
                killed = True
                status = os.waitpid(pid, 0)[1]
            else:
                time.sleep(0.005)
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        os.close(read_fd)
        outcome = json.loads(b"".join(chunks) or b"{}")
        print(json.dumps({"killed": killed, "seconds": time.monotonic() - started, **outcome}), flush=True)
    """
)


class Zygote:
    def __init__(self, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert json.loads(self.proc.stdout.readline() or "{}").get("ready"), "the zygote did not start"

    def run(self, asset: str, delay: float | None = None) -> dict:
        self.proc.stdin.write(json.dumps({"asset": asset, "delay": delay}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the zygote died"
        return json.loads(line)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    name = f"akko_test_faults_kill_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    values = {"AKKO_HOME": str(tmp_path_factory.mktemp("faults_kill_home")), "AKKO_PG_DSN": f"{SERVER_DSN}/{name}",
              "AKKO_AS_OF": "2026-11-30", "AKKO_ROWS": str(ROWS), "AKKO_SEED": "42"}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    for var in ("AKKO_ICEBERG_WAREHOUSE", "AKKO_ICEBERG_CATALOG_URI", "AKKO_S3_ENDPOINT", "AKKO_PROFILE"):
        os.environ.pop(var, None)
    yield os.environ.copy()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def zygote(env) -> Iterator[Zygote]:
    z = Zygote(env)
    yield z
    z.close()


@pytest.fixture(scope="module")
def clean_seconds(zygote) -> dict[str, float]:
    """One clean materialization of each writing asset, in graph order; their durations scale the kill points."""
    seconds = {}
    for asset in POINTS:
        outcome = zygote.run(asset)
        assert outcome["success"], (asset, outcome)
        seconds[asset] = outcome["seconds"]
    return seconds


def _pg_ids(env) -> tuple[int, int, str]:
    with psycopg.connect(env["AKKO_PG_DSN"]) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT transaction_id), "
            "md5(string_agg(transaction_id, ',' ORDER BY transaction_id COLLATE \"C\")) FROM akko.raw_transactions"
        ).fetchone()


def _iceberg_ids(table: str) -> tuple[int, int, str]:
    from akko_assets.resources.engine import connect_curated

    con = connect_curated()
    try:
        return con.sql(
            f"SELECT count(*), count(DISTINCT transaction_id), "
            f"md5(string_agg(transaction_id, ',' ORDER BY transaction_id)) FROM {table}"
        ).fetchone()
    finally:
        con.close()


CURATED = ("banking.transactions", "marts.fct_transactions", "marts.enriched_transactions")
OUTPUT = {"iceberg": ("banking.transactions",), "dbt": ("marts.fct_transactions",),
          "enriched": ("marts.enriched_transactions",)}


def _assert_consistent_after_kill(env, where: str) -> None:
    """Whatever the point: the source is complete and every curated table is duplicate-free."""
    rows, distinct, _ = _pg_ids(env)
    assert rows == distinct == ROWS, f"{where}: PostgreSQL has {rows} rows ({distinct} distinct)"
    for table in CURATED:
        count, unique, _ = _iceberg_ids(table)
        assert count == unique == ROWS, f"{where}: {table} has {count} rows, {unique} distinct"
    from akko_assets.ml.registry import load_production_model_data
    from akko_assets.settings import load_settings

    assert load_production_model_data(load_settings().home)["registry_version"], f"{where}: no production model"


def _kill_fractions(asset: str) -> list[float]:
    """Where to kill, as fractions of the asset's last clean duration (seeded per asset)."""
    rng = random.Random(f"{SEED}:{asset}")
    return [round(rng.uniform(0.05, 0.95), 3) for _ in range(POINTS[asset])]


@pytest.mark.slow
@pytest.mark.parametrize("asset", list(POINTS))
def test_sigkill_then_rerun_loses_and_doubles_nothing(asset, env, zygote, clean_seconds):
    expected = _pg_ids(env)
    killed = 0
    last_clean = clean_seconds[asset]  # the first run of an asset is slower (MLflow creates its store...)
    for i, fraction in enumerate(_kill_fractions(asset)):
        delay = fraction * last_clean
        where = f"{asset} killed at {delay:.2f} s (point {i}, seed {SEED})"
        killed += zygote.run(asset, delay)["killed"]
        _assert_consistent_after_kill(env, where)
        rerun = zygote.run(asset)
        assert rerun["success"], f"{where}: rerun failed: {rerun['failures']}"
        last_clean = rerun["seconds"]
        source = _pg_ids(env)
        assert source == expected, f"{where}: the source changed: {source} != {expected}"
        for table in OUTPUT.get(asset, ()):
            assert _iceberg_ids(table) == source, f"{where}: {table} differs from PostgreSQL after the rerun"
        if asset == "dbt":
            from akko_assets.resources.engine import connect_curated

            con = connect_curated()
            customers = con.sql("SELECT count(*), count(DISTINCT customer_id) FROM marts.dim_customers").fetchone()
            with psycopg.connect(env["AKKO_PG_DSN"]) as conn:
                pg_customers = conn.execute("SELECT count(DISTINCT customer_id) FROM akko.raw_transactions").fetchone()[0]
            assert customers == (pg_customers, pg_customers), f"{where}: dim_customers {customers} vs {pg_customers}"
        _assert_consistent_after_kill(env, f"{where}, after the rerun")
    assert killed, f"no point of {asset} landed before the run finished: the test proved nothing"


def test_kill_points_are_seeded():
    assert _kill_fractions("dbt") == _kill_fractions("dbt")
    assert _kill_fractions("dbt") != _kill_fractions("model")


@pytest.mark.slow
def test_deleted_mlflow_artifacts_name_the_fix_and_retraining_heals(env, zygote, clean_seconds):
    """The seed's "MLflow artifacts missing": enrichment fails naming ml/fraud_model; retraining fixes it.
    Last in this module: it wipes the artifact store of the module's pipeline."""
    import shutil

    shutil.rmtree(Path(env["AKKO_HOME"]) / "mlflow" / "artifacts")
    failed = zygote.run("enriched")
    assert not failed["success"]
    (message,) = failed["failures"]
    assert "model_data.json of banking-fraud" in message and "re-materialize ml/fraud_model" in message, message
    assert zygote.run("model")["success"] and zygote.run("enriched")["success"]
    assert _iceberg_ids("marts.enriched_transactions") == _pg_ids(env)
