"""Shared fixtures: a private PostgreSQL database per test session, a temporary AKKO_HOME, one
small pipeline run that tests of later stages reuse (real PostgreSQL, real Iceberg files), and
where the browser tests save their screenshots."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

SERVER_DSN = os.environ.get("AKKO_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
AS_OF = "2026-11-30"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def _create_db(name: str) -> str:
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{SERVER_DSN}/{name}"


def _drop_db(name: str) -> None:
    with psycopg.connect(f"{SERVER_DSN}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """An empty database of its own, dropped afterwards."""
    name = f"akko_test_{uuid.uuid4().hex[:10]}"
    dsn = _create_db(name)
    yield dsn
    _drop_db(name)


@pytest.fixture
def akko_env(fresh_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the platform at a fresh database and a temporary AKKO_HOME for one test."""
    home = tmp_path / "akko_home"
    monkeypatch.setenv("AKKO_HOME", str(home))
    monkeypatch.setenv("AKKO_PG_DSN", fresh_db)
    monkeypatch.setenv("AKKO_AS_OF", AS_OF)
    monkeypatch.setenv("AKKO_ROWS", "3000")
    monkeypatch.setenv("AKKO_SEED", "7")
    for var in ("AKKO_ICEBERG_WAREHOUSE", "AKKO_ICEBERG_CATALOG_URI", "AKKO_S3_ENDPOINT", "AKKO_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def pipeline_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of ONE small full pipeline run (20 000 rows) shared by the whole session."""
    name = f"akko_test_pipeline_{uuid.uuid4().hex[:8]}"
    dsn = _create_db(name)
    env = {
        "AKKO_HOME": str(tmp_path_factory.mktemp("pipeline_home")),
        "AKKO_PG_DSN": dsn,
        "AKKO_AS_OF": AS_OF,
        "AKKO_ROWS": "20000",
        "AKKO_SEED": "42",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _drop_db(name)


@pytest.fixture(scope="session")
def pipeline_run(pipeline_env: dict[str, str]):
    """Materialize the whole local graph once; returns the Dagster execution result."""
    import dagster as dg

    from akko_assets.definitions import defs

    job = defs.resolve_job_def("banking_fraud_demo")
    # Everything but the dashboard: the Superset tests start their own server and cover it.
    keys = [k for k in job.asset_layer.asset_graph.get_all_asset_keys() if k.path[0] != "bi"]
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), asset_selection=keys, raise_on_error=False)
    failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    return result


@pytest.fixture
def screenshot_path(tmp_path: Path) -> Callable[[str], Path]:
    """Where a browser test saves its screenshot `name`: the test's tmp_path, or docs/img/ (the
    committed README images) when AKKO_WRITE_DOCS_SCREENSHOTS=1 (`make screenshots`)."""

    def path(name: str) -> Path:
        folder = DOCS_IMG if os.environ.get("AKKO_WRITE_DOCS_SCREENSHOTS") == "1" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    return path


def pytest_collection_modifyitems(config, items):
    """Tests that append to the shared pipeline's data run last, so every other test sees the
    pipeline exactly as `pipeline_run` built it."""
    items.sort(key=lambda item: item.get_closest_marker("mutates_pipeline") is not None)
