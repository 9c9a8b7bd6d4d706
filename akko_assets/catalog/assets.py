"""Dagster asset `catalog/semantic_catalog`: thin wrapper over akko_assets.catalog.semantic."""

import dagster as dg

from akko_assets.catalog.semantic import (
    build_semantic_catalog,
    catalog_path,
    write_catalog,
)
from akko_assets.errors import fails_clearly
from akko_assets.resources import AkkoSettingsResource, IcebergResource

SEMANTIC_CATALOG_KEY = dg.AssetKey(["catalog", "semantic_catalog"])


@dg.asset(
    key=SEMANTIC_CATALOG_KEY,
    deps=[
        dg.AssetKey(["marts", "fct_transactions"]),
        dg.AssetKey(["marts", "dim_customers"]),
        dg.AssetKey(["marts", "enriched_transactions"]),
    ],
    group_name="catalog",
    kinds={"dbt", "json"},
    owners=["team:analytics-engineering"],
    description="Tables, columns, descriptions, PII tags and the semantic model (metrics, dimensions, "
    "synonyms, known values) built from the dbt manifest and the curated tables; ADEN answers from it.",
)
@fails_clearly
def semantic_catalog(settings: AkkoSettingsResource, iceberg: IcebergResource) -> dg.MaterializeResult:
    s = settings.get()
    con = iceberg.engine()
    try:
        catalog = build_semantic_catalog(con, as_of=s.as_of)
    finally:
        con.close()
    path = write_catalog(catalog, catalog_path(s))
    model = catalog["semantic_model"]
    return dg.MaterializeResult(
        metadata={
            "table_count": len(catalog["tables"]),
            "metric_count": len(model["metrics"]),
            "dimension_count": len(model["dimensions"]),
            "path": dg.MetadataValue.path(str(path)),
        }
    )
