"""The semantic catalog asset: built from the dbt manifest and the real curated tables of the shared pipeline run."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from akko_assets.catalog.assets import SEMANTIC_CATALOG_KEY, semantic_catalog
from akko_assets.catalog.semantic import (
    build_semantic_catalog,
    catalog_path,
    load_catalog,
)
from akko_assets.resources import AkkoSettingsResource, IcebergResource
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import load_settings


@pytest.fixture(scope="module")
def materialized(pipeline_run):
    """Materialize catalog/semantic_catalog on the shared run's curated tables (real Iceberg + dbt manifest)."""
    result = dg.materialize([semantic_catalog], resources={"settings": AkkoSettingsResource(), "iceberg": IcebergResource()})
    assert result.success
    return result


def test_asset_writes_the_catalog_file_with_metadata(materialized):
    path = catalog_path(load_settings())
    catalog = json.loads(path.read_text())
    event = materialized.asset_materializations_for_node("catalog__semantic_catalog")[0]
    assert event.asset_key == SEMANTIC_CATALOG_KEY
    assert event.metadata["table_count"].value == len(catalog["tables"]) == 4
    assert event.metadata["metric_count"].value == len(catalog["semantic_model"]["metrics"]) >= 8
    assert event.metadata["path"].value == str(path)
    # Written atomically: no temporary file is left next to it.
    assert [p.name for p in path.parent.iterdir()] == ["semantic_catalog.json"]


def test_asset_spec():
    spec = semantic_catalog.specs_by_key[SEMANTIC_CATALOG_KEY]
    assert spec.group_name == "catalog"
    assert {d.asset_key for d in spec.deps} == {
        dg.AssetKey(["marts", "fct_transactions"]), dg.AssetKey(["marts", "dim_customers"]),
        dg.AssetKey(["marts", "enriched_transactions"]),
    }
    assert set(spec.kinds) == {"dbt", "json"}


def test_columns_carry_types_descriptions_and_pii_tags(materialized):
    tables = load_catalog(catalog_path(load_settings()))["tables"]
    assert set(tables) == {"banking.transactions", "marts.fct_transactions", "marts.dim_customers", "marts.enriched_transactions"}
    for name in ("marts.fct_transactions", "marts.dim_customers", "marts.enriched_transactions", "banking.transactions"):
        columns = tables[name]["columns"]
        assert columns["customer_name"]["pii"] == "name", name
        assert columns["card_pan"]["pii"] == "pan", name
        assert columns["customer_id"]["pii"] is None
    enriched = tables["marts.enriched_transactions"]["columns"]
    assert enriched["fraud_score"]["type"] == "DOUBLE" and "Isolation Forest" in enriched["fraud_score"]["description"]
    assert enriched["is_flagged"]["type"] == "BOOLEAN"
    assert enriched["amount"]["description"] == "Amount in the transaction currency."  # from the dbt YAML
    assert tables["marts.enriched_transactions"]["row_count"] == 20_000


def test_semantic_model_lists_metrics_dimensions_synonyms_and_values(materialized):
    model = load_catalog(catalog_path(load_settings()))["semantic_model"]
    assert {"transactions", "flagged_transactions", "fraud_rate", "total_amount", "average_amount",
            "average_fraud_score", "average_sentiment", "customers"} <= set(model["metrics"])
    assert {"region", "country", "channel", "merchant_category", "status"} <= set(model["dimensions"])
    assert set(model["time_grains"]) == {"day", "week", "month"}
    assert "suspicious" in model["flag_filter"]["synonyms"]
    assert "merchant type" in model["dimensions"]["merchant_category"]["synonyms"]
    assert "spend" in model["metrics"]["total_amount"]["synonyms"]
    con = connect_curated()
    try:
        for dim in ("region", "channel", "merchant_category", "country", "status"):
            actual = sorted(r[0] for r in con.execute(f"SELECT DISTINCT {dim} FROM marts.enriched_transactions").fetchall())
            assert model["dimensions"][dim]["values"] == actual
    finally:
        con.close()
    assert model["dimensions"]["region"]["value_synonyms"]["EU"][0] == "europe"


def test_missing_manifest_names_the_fix(pipeline_run, tmp_path):
    con = connect_curated()
    try:
        with pytest.raises(FileNotFoundError, match="make setup"):
            build_semantic_catalog(con, manifest_path=tmp_path / "manifest.json")
    finally:
        con.close()
