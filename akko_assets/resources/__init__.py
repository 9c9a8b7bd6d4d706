"""Dagster resources: every piece of I/O goes through one of these, configured from the
environment via akko_assets.settings, so the k8s profile swaps values, not code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import psycopg
from pyiceberg.catalog import Catalog

from akko_assets.marts.targets import dbt_state_dir
from akko_assets.settings import Settings, ensure_home, load_settings


class AkkoSettingsResource(dg.ConfigurableResource):
    """The settings in force for a run (read from the environment when the run starts)."""

    def get(self) -> Settings:
        settings = load_settings()
        ensure_home(settings)
        return settings


class PostgresResource(dg.ConfigurableResource):
    dsn: str

    @contextlib.contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        from akko_assets.resources.postgres import connect

        with connect(self.dsn, autocommit=autocommit) as conn:
            yield conn


class IcebergResource(dg.ConfigurableResource):
    """The Iceberg catalog (SqlCatalog in PostgreSQL locally, Polaris REST on k8s)."""

    def catalog(self) -> Catalog:
        from akko_assets.lakehouse.catalog import open_catalog

        return open_catalog(load_settings())

    def engine(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB with the curated Iceberg tables as views."""
        from akko_assets.resources.engine import connect_curated

        return connect_curated(load_settings())


def dbt_environment(settings: Settings) -> dict[str, str]:
    """Environment for the dbt subprocess: target, DuckDB path and the Iceberg catalog for the plugin."""
    from akko_assets.lakehouse.catalog import catalog_properties

    env = {
        "AKKO_DBT_TARGET": "k8s" if settings.profile == "k8s" else "local",
        "AKKO_DBT_DUCKDB_PATH": str(dbt_state_dir(settings) / "akko.duckdb"),
    }
    for key, value in catalog_properties(settings).items():
        env["PYICEBERG_CATALOG__AKKO__" + key.upper().replace(".", "__").replace("-", "_")] = value
    return env


def dbt_duckdb_path(settings: Settings) -> Path:
    path = Path(dbt_environment(settings)["AKKO_DBT_DUCKDB_PATH"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def dbt_subprocess_env(settings: Settings) -> dict[str, str]:
    """The full environment for a dbt subprocess (this process's plus the dbt variables)."""
    dbt_duckdb_path(settings)  # dbt-duckdb creates the file, not its folder
    return {**os.environ, **dbt_environment(settings)}


@contextlib.contextmanager
def dbt_environment_applied(settings: Settings) -> Iterator[Path]:
    """Set the dbt variables only while dagster-dbt spawns its subprocess (it copies os.environ),
    so they never leak into the rest of the process (or into servers it starts later)."""
    env = dbt_environment(settings)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield dbt_duckdb_path(settings)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build_resources() -> dict[str, object]:
    from dagster_dbt import DbtCliResource

    from akko_assets.marts.project import dbt_project

    settings = load_settings()
    # The dbt next to this interpreter, so the venv need not be activated (PATH may lack it).
    dbt_executable = str(Path(sys.executable).with_name("dbt"))
    return {
        "settings": AkkoSettingsResource(),
        "postgres": PostgresResource(dsn=settings.pg_dsn),
        "iceberg": IcebergResource(),
        "dbt": DbtCliResource(
            project_dir=dbt_project(), profiles_dir=str(dbt_project().project_dir), dbt_executable=dbt_executable
        ),
    }
