"""Dagster asset `postgres/raw_transactions`: seed (or extend) the PostgreSQL source."""


from typing import Literal, Optional

import dagster as dg

from akko_assets.errors import fails_clearly
from akko_assets.ingest.seed import seed_transactions
from akko_assets.resources import AkkoSettingsResource, PostgresResource


class RawTransactionsConfig(dg.Config):
    rows: Optional[int] = None  # default: AKKO_ROWS
    seed: Optional[int] = None  # default: AKKO_SEED
    mode: Literal["replace", "append"] = "replace"


@dg.asset(
    key=["postgres", "raw_transactions"],
    group_name="ingestion",
    kinds={"postgres", "python"},
    owners=["team:data-platform"],
    description="Synthetic card transactions (seeded Faker pools + NumPy) loaded with COPY into akko.raw_transactions.",
    pool="postgres_source",
)
@fails_clearly
def raw_transactions(
    context: dg.AssetExecutionContext,
    config: RawTransactionsConfig,
    settings: AkkoSettingsResource,
    postgres: PostgresResource,
) -> dg.MaterializeResult:
    s = settings.get()
    rows = config.rows or s.rows
    result = seed_transactions(postgres.dsn, rows, config.seed if config.seed is not None else s.seed, s.as_of, config.mode)
    context.log.info(f"{result.mode}: wrote {result.rows_written} rows, table has {result.rows_total}")
    return dg.MaterializeResult(
        metadata={
            "mode": result.mode,
            "rows_written": result.rows_written,
            "dagster/row_count": result.rows_total,
            "fraud_rows_written": result.fraud_rows,
            "generate_seconds": result.generate_seconds,
            "copy_seconds": result.copy_seconds,
        }
    )
