"""Publish the serving DuckDB file that Superset reads.

Superset never reads the lakehouse directly: it reads one DuckDB file holding only what the
dashboard service identity (svc-superset) may see, produced through the governed executor's
rewrite. The file is built beside the target and swapped in with os.replace, so a dashboard
query never blocks a Dagster run and never sees a half-written file (readers that opened the
old file keep its inode until they close; Superset opens one connection per query).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from akko_assets.settings import MASK, Settings, load_settings

SERVING_TABLES = ("marts.enriched_transactions", "marts.dim_customers")
SERVING_FILE = "superset.duckdb"
SERVICE_IDENTITY = "svc-superset"
# Columns the dashboard identity must only ever see masked; a rewrite that lets one through is
# refused here rather than published (deny by default).
MASKED_COLUMNS = ("card_pan",)


class ServingLeakError(RuntimeError):
    """The governed rewrite returned a clear value where svc-superset must see a mask."""


def serving_db_path(settings: Settings | None = None) -> Path:
    return (settings or load_settings()).serving_dir / SERVING_FILE


def publish_serving_db(
    source: duckdb.DuckDBPyConnection,
    out_path: Path,
    rewrite: Callable[[str], str],
) -> dict[str, int]:
    """Copy the governed view of each serving table from `source` into `out_path` atomically.

    `rewrite` is the governed executor's rewrite bound to svc-superset. Returns row counts by
    table name.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder, so os.replace is an atomic rename on one filesystem.
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    counts: dict[str, int] = {}
    try:
        target = duckdb.connect(str(tmp))
        try:
            for table in SERVING_TABLES:
                rows = source.execute(rewrite(f"SELECT * FROM {table}")).to_arrow_table()
                _refuse_clear_values(table, rows)
                schema = table.split(".", 1)[0]
                target.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                target.register("_akko_rows", rows)
                target.execute(f"CREATE TABLE {table} AS SELECT * FROM _akko_rows")
                target.unregister("_akko_rows")
                counts[table] = rows.num_rows
            # Fold the WAL into the file before the swap: readers open only the .duckdb file.
            target.execute("CHECKPOINT")
        finally:
            target.close()
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
    return counts


def _refuse_clear_values(table: str, rows: pa.Table) -> None:
    for column in MASKED_COLUMNS:
        if column not in rows.column_names:
            continue
        values = rows.column(column)
        clear = pc.sum(pc.and_kleene(pc.is_valid(values), pc.not_equal(values, MASK))).as_py() or 0
        if clear:
            raise ServingLeakError(
                f"{table}.{column}: {clear} rows are not masked for {SERVICE_IDENTITY}; "
                "the rewrite must come from the governed executor bound to that identity"
            )
