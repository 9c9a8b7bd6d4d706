"""The Airflow compatibility DAG in its own virtualenv: it parses cleanly and fails clearly when
the Dagster webserver is down. (Its success against a running webserver is tested in
test_orchestration_e2e.py, which owns the webserver.)"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_VENV = Path(os.environ.get("AKKO_AIRFLOW_VENV", "") or REPO / ".venv-airflow")
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.skipif(not AIRFLOW.exists(),
                       reason=f"{AIRFLOW} missing: run `bash scripts/setup_airflow.sh` (or `make airflow`)"),
]


def airflow_env(home: Path, graphql_url: str) -> dict[str, str]:
    """Environment for an Airflow CLI call: private AIRFLOW_HOME (SQLite), the repo's DAG folder only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "airflow" / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        DAGSTER_GRAPHQL_URL=graphql_url,
        DAGSTER_POLL_SECONDS="1",
        PATH=f"{AIRFLOW_VENV / 'bin'}:{env.get('PATH', '')}",
    )
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def airflow(env: dict[str, str], *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture(scope="module")
def down_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = airflow_env(tmp_path_factory.mktemp("airflow_home"), f"http://127.0.0.1:{closed_port()}/graphql")
    migrated = airflow(env, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return env


def test_dag_parses_without_import_errors(down_env: dict[str, str]) -> None:
    reserialized = airflow(down_env, "dags", "reserialize")
    assert reserialized.returncode == 0, reserialized.stderr[-3000:]
    errors = airflow(down_env, "dags", "list-import-errors", "-o", "plain")
    assert errors.returncode == 0, errors.stderr[-3000:]
    # (A broken DAG file is listed here with its traceback; an import-clean folder says so.)
    assert "akko_banking_fraud_demo.py" not in errors.stdout, errors.stdout
    assert "No data found" in errors.stdout, errors.stdout
    listed = airflow(down_env, "dags", "list", "-o", "plain")
    assert "banking_fraud_demo" in listed.stdout, listed.stdout + listed.stderr[-2000:]


def test_dag_fails_with_url_and_fix_when_dagster_is_down(down_env: dict[str, str]) -> None:
    result = airflow(down_env, "dags", "test", "banking_fraud_demo")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert f"Dagster webserver is not reachable at {down_env['DAGSTER_GRAPHQL_URL']}" in output, output[-3000:]
    assert "start it with `make ui`" in output
