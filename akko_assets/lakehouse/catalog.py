"""The Iceberg catalog: pyiceberg SqlCatalog locally (catalog tables in PostgreSQL, so Spark's
JdbcCatalog sees the same tables), a REST catalog (Polaris) in the k8s profile."""

from __future__ import annotations

import os
import time

import pyarrow as pa
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.transforms import IdentityTransform
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    NestedField,
    StringType,
    TimestamptzType,
)

from akko_assets.settings import Settings

CATALOG_NAME = "akko"
TRANSACTIONS = "banking.transactions"

TRANSACTIONS_SCHEMA = Schema(
    # transaction_id is required: pyiceberg's upsert needs required primitive identifier fields.
    NestedField(1, "transaction_id", StringType(), required=True),
    NestedField(2, "customer_id", StringType()),
    NestedField(3, "customer_name", StringType()),
    NestedField(4, "card_pan", StringType()),
    NestedField(5, "amount", DecimalType(12, 2)),
    NestedField(6, "currency", StringType()),
    NestedField(7, "merchant", StringType()),
    NestedField(8, "merchant_category", StringType()),
    NestedField(9, "channel", StringType()),
    NestedField(10, "region", StringType()),
    NestedField(11, "country", StringType()),
    NestedField(12, "status", StringType()),
    NestedField(13, "memo", StringType()),
    NestedField(14, "ts", TimestamptzType()),
    NestedField(15, "is_fraud", BooleanType()),
    NestedField(16, "updated_at", TimestamptzType()),
    identifier_field_ids=[1],
)
REGION_SPEC = PartitionSpec(PartitionField(source_id=10, field_id=1000, transform=IdentityTransform(), name="region"))


def catalog_properties(settings: Settings) -> dict[str, str]:
    """Properties for pyiceberg's load_catalog; also handed to dbt-duckdb's iceberg plugin."""
    props: dict[str, str] = {"warehouse": settings.iceberg_warehouse}
    if settings.iceberg_catalog_uri.startswith(("http://", "https://")):
        props.update(type="rest", uri=settings.iceberg_catalog_uri)
        if os.environ.get("AKKO_ICEBERG_CREDENTIAL"):
            props["credential"] = os.environ["AKKO_ICEBERG_CREDENTIAL"]
    else:
        props.update(type="sql", uri=settings.iceberg_catalog_uri, init_catalog_tables="true")
    if settings.iceberg_warehouse.startswith("s3://") or os.environ.get("AKKO_S3_ENDPOINT"):
        props.update(
            {
                "s3.endpoint": os.environ.get("AKKO_S3_ENDPOINT", ""),
                "s3.access-key-id": os.environ.get("AWS_ACCESS_KEY_ID", ""),
                "s3.secret-access-key": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                "s3.region": os.environ.get("AWS_REGION", "us-east-1"),
                "s3.path-style-access": os.environ.get("AKKO_S3_PATH_STYLE", "true"),
            }
        )
    return {k: v for k, v in props.items() if v != ""}


CATALOG_INIT_ATTEMPTS = 5


def open_catalog(settings: Settings) -> Catalog:
    if settings.iceberg_warehouse.startswith("file://"):
        from pathlib import Path
        from urllib.parse import urlparse

        Path(urlparse(settings.iceberg_warehouse).path).mkdir(parents=True, exist_ok=True)
    properties = catalog_properties(settings)
    if properties.get("type") != "sql":
        return load_catalog(CATALOG_NAME, **properties)
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(1, CATALOG_INIT_ATTEMPTS + 1):
        try:
            return load_catalog(CATALOG_NAME, **properties)
        except (IntegrityError, ProgrammingError):
            # The first processes on a new database race to CREATE the catalog's own tables; the
            # losers fail on PostgreSQL's catalog ("duplicate key ... pg_type"). Once one of them
            # has created them, opening again finds them.
            if attempt == CATALOG_INIT_ATTEMPTS:
                raise
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    try:
        catalog.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass


def ensure_transactions_table(catalog: Catalog) -> Table:
    ensure_namespace(catalog, "banking")
    try:
        return catalog.load_table(TRANSACTIONS)
    except NoSuchTableError:
        return catalog.create_table(
            TRANSACTIONS,
            schema=TRANSACTIONS_SCHEMA,
            partition_spec=REGION_SPEC,
            properties={"format-version": "2", "write.parquet.compression-codec": "zstd"},
        )


def publish_table(catalog: Catalog, identifier: str, data: pa.Table | pa.RecordBatchReader, schema: pa.Schema,
                  properties: dict[str, str] | None = None) -> Table:
    """Create-or-replace a table's contents in one atomic snapshot (readers see old or new, never half)."""
    namespace = identifier.split(".")[0]
    ensure_namespace(catalog, namespace)
    try:
        table = catalog.load_table(identifier)
        if table.schema().as_arrow() != schema:
            with table.update_schema() as update:
                update.union_by_name(schema)
    except NoSuchTableError:
        table = catalog.create_table(identifier, schema=schema, properties={"format-version": "2"})
    with table.transaction() as tx:
        tx.overwrite(data)
        if properties:
            tx.set_properties(properties)
    return table
