"""Publish the dbt marts from the run's DuckDB file to Iceberg namespace `marts`.

Readers (dashboard, ADEN, CLI) only ever read the Iceberg tables, so a dbt run that holds its
DuckDB file for writing never blocks them; each table is replaced in one atomic snapshot.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog

from akko_assets.lakehouse.catalog import publish_table

MART_TABLES = ("fct_transactions", "dim_customers")


def _iceberg_compatible(schema: pa.Schema) -> pa.Schema:
    """DuckDB hands out a few Arrow types Iceberg has no equivalent for (hugeint sums, ints < 32 bit)."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_decimal(t) and t.precision > 38:
            t = pa.decimal128(38, t.scale)
        elif pa.types.is_integer(t) and t.bit_width < 32:
            t = pa.int32()
        elif pa.types.is_unsigned_integer(t):
            t = pa.int64()
        fields.append(pa.field(f.name, t))
    return pa.schema(fields)


def read_mart(con: duckdb.DuckDBPyConnection, name: str, schema: str = "marts") -> pa.Table:
    table = con.sql(f'SELECT * FROM "{schema}"."{name}"').arrow()
    if isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    return table.cast(_iceberg_compatible(table.schema))


def publish_marts(duckdb_path: Path, catalog: Catalog, tables: tuple[str, ...] = MART_TABLES) -> dict[str, int]:
    counts = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for name in tables:
            data = read_mart(con, name)
            publish_table(catalog, f"marts.{name}", data, data.schema)
            counts[name] = data.num_rows
    return counts
