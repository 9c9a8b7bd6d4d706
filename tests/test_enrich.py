"""The enrichment: one SQL statement with akko_ai_anomaly and akko_ai_sentiment."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest
import sqlglot

from akko_assets.enrich.udfs import enrich, enrichment_sql, trino_view_sql
from akko_assets.ml.registry import NoProductionModel, load_production_model_data
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import load_settings


@pytest.fixture(scope="module")
def enriched(pipeline_run):
    con = connect_curated(load_settings())
    return con.sql("SELECT * FROM marts.enriched_transactions").arrow().read_all()


def test_every_row_is_enriched(enriched):
    con = connect_curated(load_settings())
    assert enriched.num_rows == con.sql("SELECT count(*) FROM marts.fct_transactions").fetchone()[0]
    for column in ("fraud_score", "is_flagged", "memo_sentiment"):
        assert enriched.column(column).null_count == 0
    scores = enriched.column("fraud_score")
    assert pc.min(scores).as_py() > 0 and pc.max(scores).as_py() <= 1
    sentiment = enriched.column("memo_sentiment")
    assert pc.min(sentiment).as_py() < -0.3 and pc.max(sentiment).as_py() > 0.3


def test_flagged_rows_are_enriched_for_fraud(enriched):
    df = enriched.select(["is_flagged", "is_fraud"]).to_pandas()
    lift = df[df.is_flagged].is_fraud.mean() / df.is_fraud.mean()
    assert lift >= 5
    assert 0.02 <= df.is_flagged.mean() <= 0.04


def test_flag_uses_the_registered_threshold(enriched):
    threshold = load_production_model_data(load_settings().home)["threshold"]
    df = enriched.select(["fraud_score", "is_flagged"]).to_pandas()
    assert ((df.fraud_score > threshold) == df.is_flagged).all()


class CountingConnection:
    """Wraps a real DuckDB connection and counts the statements sent to it."""

    def __init__(self, con):
        self._con, self.statements = con, []

    def execute(self, query, *args, **kwargs):
        self.statements.append(query)
        return self._con.execute(query, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_enrichment_is_one_statement(pipeline_run):
    assert len(sqlglot.parse(enrichment_sql().replace("$threshold", "0.5"), read="duckdb")) == 1
    con = connect_curated(load_settings())
    data = load_production_model_data(load_settings().home)
    from trino_udfs.duckdb_udfs import register_duckdb_functions

    register_duckdb_functions(con, data)  # registration happens before; count only what enrich sends
    counting = CountingConnection(con)
    table = enrich(counting, data)
    queries = [q for q in counting.statements if q.strip() != "SELECT 1"]
    assert queries == [enrichment_sql()] and table.num_rows == 20_000


def test_model_and_features_disagree_fails_before_writing(pipeline_run):
    data = dict(load_production_model_data(load_settings().home))
    data["features"] = list(reversed(data["features"]))
    with pytest.raises(ValueError, match="disagree"):
        enrich(connect_curated(load_settings()), data)


def test_no_production_model_names_the_asset(tmp_path):
    with pytest.raises(NoProductionModel, match="ml/fraud_model"):
        load_production_model_data(tmp_path)


def test_trino_view_is_derived_from_the_same_statement():
    view = trino_view_sql(0.61)
    parsed = sqlglot.parse_one(view, read="trino")
    assert isinstance(parsed, sqlglot.exp.Create)
    functions = {f.name for f in parsed.find_all(sqlglot.exp.Anonymous)} | {
        f.sql() for f in parsed.find_all(sqlglot.exp.Dot)}
    assert any("akko_ai_anomaly" in f for f in functions) and any("akko_ai_sentiment" in f for f in functions)
    assert "udf.akko.akko_ai_anomaly(" in view and "udf.akko.akko_ai_sentiment(" in view
    assert "iceberg.marts.fct_transactions" in view and "> 0.61" in view
