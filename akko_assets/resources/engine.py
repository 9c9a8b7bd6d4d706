"""The embedded SQL engine: DuckDB reading the Iceberg tables (the local stand-in for Trino).

Extensions come from PyPI wheels and are loaded by file path, because `INSTALL iceberg` would
download them at run time. Each connection is in-memory and reads the tables' current Iceberg
metadata, so readers never open a file that a running pipeline holds for writing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError

from akko_assets.settings import Settings

CURATED_NAMESPACES = ("banking", "marts")


class ExtensionMissing(RuntimeError):
    pass


def extension_path(name: str) -> Path:
    """Path of a DuckDB extension file shipped by the PyPI package duckdb-extension-<name>."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    version = duckdb.__version__
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionMissing(
            f"DuckDB extension '{name}' is not installed: run `make setup` "
            f"(it installs duckdb-extension-{name}=={version})"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.exists():
        raise ExtensionMissing(
            f"{path} does not exist: duckdb-extension-{name} must match duckdb=={version} exactly; run `make setup`"
        )
    return path


def load_extensions(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    for name in names:
        con.execute(f"LOAD '{extension_path(name)}'")


def _configure_s3(con: duckdb.DuckDBPyConnection) -> None:
    endpoint = os.environ.get("AKKO_S3_ENDPOINT", "")
    if not endpoint:
        return
    load_extensions(con, "httpfs")
    use_ssl = endpoint.startswith("https://")
    host = endpoint.split("://", 1)[-1].rstrip("/")
    con.execute(
        "CREATE OR REPLACE SECRET akko_s3 (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL ?)",
        [os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
         os.environ.get("AWS_REGION", "us-east-1"), host, use_ssl],
    )


def attach_iceberg_views(con: duckdb.DuckDBPyConnection, catalog: Catalog,
                         namespaces: tuple[str, ...] = CURATED_NAMESPACES) -> list[str]:
    """Create `<namespace>.<table>` views over each Iceberg table's current snapshot."""
    load_extensions(con, "avro", "iceberg")
    _configure_s3(con)
    created = []
    for namespace in namespaces:
        try:
            identifiers = catalog.list_tables(namespace)
        except NoSuchNamespaceError:
            continue
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{namespace}"')
        for identifier in identifiers:
            table = catalog.load_table(identifier)
            name = identifier[-1]
            if table.current_snapshot() is None:
                # iceberg_scan cannot read a table without a snapshot: expose an empty relation.
                empty = table.schema().as_arrow().empty_table()
                con.register(f"_empty_{namespace}_{name}", empty)
                con.execute(f'CREATE OR REPLACE VIEW "{namespace}"."{name}" AS SELECT * FROM "_empty_{namespace}_{name}"')
            else:
                location = table.metadata_location.replace("'", "''")
                con.execute(f"CREATE OR REPLACE VIEW \"{namespace}\".\"{name}\" AS SELECT * FROM iceberg_scan('{location}')")
            created.append(f"{namespace}.{name}")
    return created


def connect_curated(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the curated Iceberg tables as views."""
    from akko_assets.lakehouse.catalog import open_catalog
    from akko_assets.settings import load_settings

    settings = settings or load_settings()
    con = duckdb.connect(":memory:")
    attach_iceberg_views(con, open_catalog(settings))
    return con
