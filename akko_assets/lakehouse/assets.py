"""Dagster asset `iceberg/banking/transactions` and its checks."""


import dagster as dg

from akko_assets.errors import fails_clearly
from akko_assets.lakehouse.catalog import TRANSACTIONS
from akko_assets.lakehouse.replicate import replicate
from akko_assets.resources import AkkoSettingsResource, IcebergResource, PostgresResource

TRANSACTIONS_KEY = dg.AssetKey(["iceberg", "banking", "transactions"])


class ReplicateConfig(dg.Config):
    full_refresh: bool = False


@dg.asset(
    key=TRANSACTIONS_KEY,
    deps=[dg.AssetKey(["postgres", "raw_transactions"])],
    group_name="lakehouse",
    kinds={"iceberg", "postgres"},
    owners=["team:data-platform"],
    description=(
        "Iceberg banking.transactions, partitioned by region: MERGE (upsert on transaction_id) of rows "
        "changed in PostgreSQL since the high-water mark; malformed rows go to akko.raw_transactions_rejects."
    ),
    pool="iceberg_writer",
)
@fails_clearly
def banking_transactions(
    context: dg.AssetExecutionContext,
    config: ReplicateConfig,
    settings: AkkoSettingsResource,
    postgres: PostgresResource,
    iceberg: IcebergResource,
) -> dg.MaterializeResult:
    s = settings.get()
    catalog = iceberg.catalog()
    if s.replicator == "spark":
        # Spark reads PostgreSQL over JDBC and runs MERGE INTO on the same Iceberg table.
        from akko_assets.lakehouse.spark import replicate_with_spark

        result = replicate_with_spark(s, full=config.full_refresh)
    else:
        with postgres.connect() as conn:
            result = replicate(conn, catalog, full=config.full_refresh)
    context.log.info(f"{result.mode} replication ({s.replicator}): {result.rows_inserted} inserted, {result.rows_updated} updated")
    table = catalog.load_table(TRANSACTIONS)
    preview = table.scan(limit=5, selected_fields=("transaction_id", "region", "amount", "ts")).to_pandas()
    return dg.MaterializeResult(
        metadata={
            "mode": result.mode,
            "replicator": s.replicator,
            "source_rows_read": result.source_rows_read,
            "rows_inserted": result.rows_inserted,
            "rows_updated": result.rows_updated,
            "rows_rejected": sum(result.rejected.values()),
            "rejected_by_reason": dg.MetadataValue.json(result.rejected),
            "dagster/row_count": result.table_rows,
            "snapshot_id": str(result.snapshot_id),
            "high_water_mark": result.high_water_mark or "",
            "seconds": result.seconds,
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
        }
    )


@dg.asset_check(asset=TRANSACTIONS_KEY, description="Iceberg row count equals valid PostgreSQL rows (all minus quarantined).")
def counts_reconcile_with_postgres(postgres: PostgresResource, iceberg: IcebergResource) -> dg.AssetCheckResult:
    con = iceberg.engine()
    iceberg_rows = con.sql("SELECT count(*) FROM banking.transactions").fetchone()[0]
    with postgres.connect() as conn:
        pg_rows = conn.execute("SELECT count(*) FROM akko.raw_transactions").fetchone()[0]
        rejected = conn.execute(
            "SELECT count(DISTINCT r.transaction_id) FROM akko.raw_transactions_rejects r "
            "JOIN akko.raw_transactions t USING (transaction_id)"
        ).fetchone()[0]
    return dg.AssetCheckResult(
        passed=iceberg_rows == pg_rows - rejected,
        metadata={"iceberg_rows": iceberg_rows, "postgres_rows": pg_rows, "postgres_rows_rejected": rejected},
    )


@dg.asset_check(asset=TRANSACTIONS_KEY, description="transaction_id is unique in Iceberg.")
def transaction_id_unique(iceberg: IcebergResource) -> dg.AssetCheckResult:
    con = iceberg.engine()
    total, distinct = con.sql("SELECT count(*), count(DISTINCT transaction_id) FROM banking.transactions").fetchone()
    return dg.AssetCheckResult(passed=total == distinct, metadata={"rows": total, "distinct_ids": distinct})


@dg.asset_check(asset=TRANSACTIONS_KEY, description="The table is partitioned by identity(region).")
def partitioned_by_region(iceberg: IcebergResource) -> dg.AssetCheckResult:
    table = iceberg.catalog().load_table(TRANSACTIONS)
    fields = [(table.schema().find_field(f.source_id).name, str(f.transform)) for f in table.spec().fields]
    return dg.AssetCheckResult(passed=fields == [("region", "identity")], metadata={"partition_fields": str(fields)})


@dg.asset_check(asset=TRANSACTIONS_KEY, description="Rows quarantined as malformed (warns when any).",
                blocking=False)
def quarantined_rows(postgres: PostgresResource) -> dg.AssetCheckResult:
    with postgres.connect() as conn:
        rows = conn.execute(
            "SELECT reason, count(*) FROM akko.raw_transactions_rejects GROUP BY reason ORDER BY reason"
        ).fetchall()
    counts = {reason: n for reason, n in rows}
    return dg.AssetCheckResult(
        passed=not counts,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_by_reason": dg.MetadataValue.json(counts), "rejected": sum(counts.values())},
    )
