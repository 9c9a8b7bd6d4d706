"""The fraud model: trained on real marts, tracked and registered in a real MLflow store."""

from __future__ import annotations

import numpy as np
import pytest

from akko_assets.contract import MODEL_FEATURES
from akko_assets.ml.registry import (
    ALIAS,
    MODEL_NAME,
    RegistryUnavailable,
    load_production_model_data,
    log_and_register,
    tracking_uri_for,
)
from akko_assets.ml.train import (
    TrainingDataError,
    build_pipeline,
    evaluate,
    feature_matrix,
    fraud_scores,
    load_training_table,
    train,
)
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import load_settings
from trino_udfs.akko_ai_anomaly import make_scorer


@pytest.fixture(scope="module")
def training_table(pipeline_run):
    return load_training_table(connect_curated(load_settings()))


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri_for(load_settings().home))


def test_production_model_loads_by_alias_and_scores(training_table):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri_for(load_settings().home))
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    X = feature_matrix(training_table)
    scores = -model.score_samples(X[:1000])
    assert scores.shape == (1000,) and np.all((scores > 0) & (scores <= 1))
    version = _client().get_model_version_by_alias(MODEL_NAME, ALIAS)
    run = _client().get_run(version.run_id)
    assert run.data.metrics["roc_auc"] >= 0.90
    assert {"average_precision", "precision_at_threshold", "recall_at_threshold", "lift_top_1pct"} <= set(run.data.metrics)
    artifacts = {a.path for a in _client().list_artifacts(version.run_id)} | {
        a.path for a in _client().list_artifacts(version.run_id, "plots")}
    assert {"model_data.json", "plots/score_distribution.png", "plots/precision_recall.png"} <= artifacts


def test_exported_trees_reproduce_sklearn_scores(training_table):
    import mlflow

    mlflow.set_tracking_uri(tracking_uri_for(load_settings().home))
    model = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}@{ALIAS}")
    data = load_production_model_data(load_settings().home)
    X = feature_matrix(training_table)[:10_000]
    expected = -model.score_samples(X)
    scorer = make_scorer(data)
    got = np.array([scorer(*row) for row in X.tolist()])
    assert np.max(np.abs(got - expected)) < 1e-9


def test_gate_keeps_production_when_a_worse_model_is_offered(training_table):
    settings = load_settings()
    client = _client()
    before = client.get_model_version_by_alias(MODEL_NAME, ALIAS).version
    X = feature_matrix(training_table)
    labels = training_table.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool)
    # A deliberately weak forest: two trees that each see four rows.
    weak = build_pipeline(seed=1, n_estimators=2, max_samples=4).fit(X)
    trained = train(training_table, seed=1, n_estimators=2)
    trained.pipeline = weak
    trained.scores = fraud_scores(weak, X)
    trained.metrics = evaluate(trained.scores, labels, trained.threshold)
    assert trained.metrics["roc_auc"] < 0.85
    result = log_and_register(trained, X, settings.home, {"purpose": "gate test"})
    assert not result.promoted and "worse" in result.reason
    assert str(client.get_model_version_by_alias(MODEL_NAME, ALIAS).version) == str(before)
    assert int(result.version) > int(before)


def test_retraining_registers_a_new_version_and_keeps_the_alias_valid(training_table):
    settings = load_settings()
    client = _client()
    before = int(client.get_model_version_by_alias(MODEL_NAME, ALIAS).version)
    trained = train(training_table, seed=settings.seed)
    result = log_and_register(trained, feature_matrix(training_table), settings.home, {"purpose": "rerun"})
    assert int(result.version) > before and result.promoted
    assert str(client.get_model_version_by_alias(MODEL_NAME, ALIAS).version) == result.version
    assert load_production_model_data(settings.home)["registry_version"] == result.version


def test_same_seed_same_model(training_table):
    a = train(training_table.slice(0, 3000), seed=3, n_estimators=20)
    b = train(training_table.slice(0, 3000), seed=3, n_estimators=20)
    assert a.model_data == b.model_data


def test_too_few_rows_names_the_upstream(training_table):
    with pytest.raises(TrainingDataError, match="postgres/raw_transactions"):
        train(training_table.slice(0, 10))


def test_missing_feature_columns_name_the_upstream():
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.fct_transactions AS SELECT 1.0 AS amount, false AS is_fraud")
    with pytest.raises(TrainingDataError, match="marts/fct_transactions"):
        load_training_table(con)


def test_unreachable_tracking_server_fails_clearly(training_table, tmp_path, monkeypatch):
    monkeypatch.setenv("AKKO_MLFLOW_TRACKING_URI", "http://127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    trained = train(training_table.slice(0, 2000), seed=1, n_estimators=5)
    with pytest.raises(RegistryUnavailable, match="AKKO_MLFLOW_TRACKING_URI"):
        log_and_register(trained, feature_matrix(training_table), tmp_path, {})


def test_feature_order_is_the_contract():
    from trino_udfs.akko_ai_anomaly import EXPECTED_FEATURES

    assert tuple(EXPECTED_FEATURES) == tuple(MODEL_FEATURES)
