"""Dagster asset `marts/enriched_transactions`."""

import dagster as dg
import pyarrow.compute as pc

from akko_assets.errors import fails_clearly
from akko_assets.enrich.udfs import enrich, production_model_data
from akko_assets.lakehouse.catalog import publish_table
from akko_assets.marts.publish import _iceberg_compatible
from akko_assets.resources import AkkoSettingsResource, IcebergResource

ENRICHED_KEY = dg.AssetKey(["marts", "enriched_transactions"])


@dg.asset(
    key=ENRICHED_KEY,
    deps=[dg.AssetKey(["marts", "fct_transactions"]), dg.AssetKey(["ml", "fraud_model"])],
    group_name="enrichment",
    kinds={"duckdb", "iceberg", "python"},
    owners=["team:fraud-ml"],
    description="fct_transactions + fraud_score, is_flagged, memo_sentiment from ONE SQL statement "
    "calling akko_ai_anomaly(...) and akko_ai_sentiment(memo); published to Iceberg marts.enriched_transactions.",
    pool="iceberg_writer",
)
@fails_clearly
def enriched_transactions(
    context: dg.AssetExecutionContext, settings: AkkoSettingsResource, iceberg: IcebergResource
) -> dg.MaterializeResult:
    s = settings.get()
    model_data = production_model_data(s)
    enriched = enrich(iceberg.engine(), model_data)
    enriched = enriched.cast(_iceberg_compatible(enriched.schema))
    publish_table(iceberg.catalog(), "marts.enriched_transactions", enriched, enriched.schema,
                  properties={"akko.model-version": model_data.get("registry_version", "")})
    flagged = pc.sum(enriched.column("is_flagged").cast("int64")).as_py() or 0
    fraud = enriched.column("is_fraud").cast("int64")
    flagged_fraud = pc.sum(pc.multiply(fraud, enriched.column("is_flagged").cast("int64"))).as_py() or 0
    base = (pc.sum(fraud).as_py() or 0) / max(enriched.num_rows, 1)
    lift = (flagged_fraud / flagged) / base if flagged and base else 0.0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": enriched.num_rows,
            "flagged": flagged,
            "flagged_share": round(flagged / max(enriched.num_rows, 1), 4),
            "fraud_lift_among_flagged": round(lift, 2),
            "model_version": model_data.get("registry_version", ""),
            "threshold": float(model_data["threshold"]),
        }
    )
