"""Publish the dbt marts from the run's DuckDB file to Iceberg namespace `marts`.

Readers (dashboard, ADEN, CLI) only ever read the Iceberg tables, so a dbt run that holds its
DuckDB file for writing never blocks them; each table is replaced in one atomic snapshot, streamed
from DuckDB in batches so memory stays at about one data file whatever the row count.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError

from akko_assets.lakehouse.catalog import ensure_namespace, publish_table

MART_TABLES = ("fct_transactions", "dim_customers")
PUBLISH_BATCH_ROWS = 100_000
TARGET_FILE_SIZE = "write.target-file-size-bytes"
# pyiceberg counts in-memory Arrow bytes, so files on disk come out several times smaller.
TARGET_FILE_BYTES = 128 << 20


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


def stream_mart(con: duckdb.DuckDBPyConnection, name: str, schema: str = "marts",
                batch_rows: int = PUBLISH_BATCH_ROWS) -> tuple[pa.RecordBatchReader, list[int]]:
    """The mart as a stream of Iceberg-compatible batches, and a one-item list that counts its rows."""
    source = con.sql(f'SELECT * FROM "{schema}"."{name}"').fetch_record_batch(batch_rows)
    target = _iceberg_compatible(source.schema)
    counted = [0]

    def batches():
        for batch in source:
            counted[0] += batch.num_rows
            yield batch.cast(target)

    return pa.RecordBatchReader.from_batches(target, batches()), counted


def ensure_bounded_files(catalog: Catalog, identifier: str, schema: pa.Schema) -> None:
    """Give the table a target file size, so a streamed overwrite buffers at most one file's worth."""
    ensure_namespace(catalog, identifier.split(".")[0])
    bounded = {"format-version": "2", TARGET_FILE_SIZE: str(TARGET_FILE_BYTES)}
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        catalog.create_table(identifier, schema=schema, properties=bounded)
        return
    if table.properties.get(TARGET_FILE_SIZE) != bounded[TARGET_FILE_SIZE]:
        with table.transaction() as tx:
            tx.set_properties({TARGET_FILE_SIZE: bounded[TARGET_FILE_SIZE]})


def publish_marts(duckdb_path: Path, catalog: Catalog, tables: tuple[str, ...] = MART_TABLES) -> dict[str, int]:
    counts = {}
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        for name in tables:
            data, counted = stream_mart(con, name)
            ensure_bounded_files(catalog, f"marts.{name}", data.schema)
            publish_table(catalog, f"marts.{name}", data, data.schema)
            counts[name] = counted[0]
    return counts
