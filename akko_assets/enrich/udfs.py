"""The enrichment: one SQL statement over marts.fct_transactions with the two AI functions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import sqlglot

from akko_assets.ml.registry import load_production_model_data
from akko_assets.observability.tracing import query_span
from akko_assets.settings import Settings
from trino_udfs.duckdb_udfs import register_duckdb_functions

ENRICH_SQL_PATH = Path(__file__).with_name("enriched_transactions.sql")


def enrichment_sql() -> str:
    return ENRICH_SQL_PATH.read_text()


def production_model_data(settings: Settings) -> dict:
    return load_production_model_data(settings.home)


def enrich(con: duckdb.DuckDBPyConnection, model_data: dict) -> pa.Table:
    """Register the functions for this model and run THE statement; returns the enriched rows."""
    register_duckdb_functions(con, model_data)  # raises before any query if model and features disagree
    with query_span(enrichment_sql(), role="pipeline") as record:
        result = con.execute(enrichment_sql(), {"threshold": float(model_data["threshold"])}).arrow()
        table = result.read_all() if isinstance(result, pa.RecordBatchReader) else result
        record(table.num_rows)
    return table


def trino_view_sql(threshold: float, catalog: str = "iceberg", function_catalog: str = "udf",
                   function_schema: str = "akko") -> str:
    """The same statement as a Trino view (k8s profile), derived from the .sql file with sqlglot."""
    sql = enrichment_sql().replace("$threshold", repr(float(threshold)))
    expression = sqlglot.parse_one(sql, read="duckdb")
    for func in expression.find_all(sqlglot.exp.Anonymous):
        if func.name.lower() in ("akko_ai_anomaly", "akko_ai_sentiment"):
            func.set("this", f"{function_catalog}.{function_schema}.{func.name}")
    for table in expression.find_all(sqlglot.exp.Table):
        if not table.catalog:
            table.set("catalog", sqlglot.exp.to_identifier(catalog))
    body = expression.sql(dialect="trino", pretty=True, normalize_functions="lower")
    return f"CREATE OR REPLACE VIEW {catalog}.marts.enriched_transactions AS\n{body}"
