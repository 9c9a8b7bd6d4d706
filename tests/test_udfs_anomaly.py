"""akko_ai_anomaly: parity with scikit-learn, NULL handling, model-data checks, DuckDB registration."""

from __future__ import annotations

import functools
import json
import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from sklearn.ensemble import IsolationForest

from akko_assets.contract import MODEL_FEATURES
from trino_udfs.akko_ai_anomaly import EXPECTED_FEATURES, Forest, make_scorer, to_float32
from trino_udfs.duckdb_udfs import register_duckdb_functions
from trino_udfs.export import apply_transforms, export_isolation_forest

FEATURES = list(MODEL_FEATURES)
TRANSFORMS = {"amount": "log1p"}


def synthetic_features(n: int, seed: int) -> np.ndarray:
    """Card-transaction-like feature rows (MODEL_FEATURES order) with ~2% injected anomalies."""
    rng = np.random.default_rng(seed)
    hour = rng.integers(0, 24, n)
    amount = np.round(rng.lognormal(3.3, 1.0, n), 2)
    X = np.column_stack([
        amount,
        hour,
        ((hour < 6) | (hour >= 23)).astype(float),
        rng.normal(0.0, 1.0, n),
        rng.poisson(0.3, n),
        rng.poisson(3.0, n),
        (rng.random(n) < 0.1).astype(float),
        (rng.random(n) < 0.03).astype(float),
    ]).astype(np.float64)
    odd = rng.random(n) < 0.02
    X[odd, 0] *= rng.uniform(10, 60, odd.sum())  # large amounts
    X[odd, 3] += rng.uniform(4, 9, odd.sum())
    X[odd, 4] += rng.integers(5, 20, odd.sum())  # card-testing bursts
    return X


@functools.cache
def trained(max_features: float = 1.0) -> tuple[IsolationForest, dict]:
    X = synthetic_features(10_000, seed=1)
    model = IsolationForest(n_estimators=100, max_features=max_features, random_state=42)
    model.fit(apply_transforms(X, FEATURES, TRANSFORMS))
    return model, export_isolation_forest(model, FEATURES, threshold=0.6, transforms=TRANSFORMS)


def sklearn_fraud_score(model: IsolationForest, X: np.ndarray) -> np.ndarray:
    return -model.score_samples(apply_transforms(X, FEATURES, TRANSFORMS))


def test_expected_features_are_the_contract():
    assert EXPECTED_FEATURES == MODEL_FEATURES


@pytest.mark.parametrize("max_features", [1.0, 0.6])  # 0.6: per-tree estimators_features_
def test_scalar_equals_sklearn_score_samples_on_10k_rows(max_features):
    model, data = trained(max_features)
    X = synthetic_features(10_000, seed=2)
    expected = sklearn_fraud_score(model, X)
    scorer = make_scorer(json.loads(json.dumps(data)))  # through JSON, as stored in MLflow
    got = np.array([scorer(*row) for row in X.tolist()])
    assert np.all((got > 0) & (got <= 1))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # The anomalies score higher than the bulk: the mapping points the right way.
    assert got.max() > 0.6 > np.median(got)


def test_values_on_split_thresholds_follow_sklearn():
    """Inputs on thresholds: float32 neighbours, and float64 neighbours that float32 rounding
    moves across the threshold (sklearn rounds X to float32 before comparing)."""
    model, data = trained()
    scorer = make_scorer(data)
    base = synthetic_features(1, seed=3)[0]
    rows = []
    for tree in data["trees"][:20]:
        for feature, threshold in zip(tree["feature"], tree["threshold"]):
            if feature <= 0:  # leaves (-2) and the log1p-transformed amount column
                continue
            t32 = np.float32(threshold)
            for value in (t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf)),
                          threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)):
                row = base.copy()
                row[feature] = float(value)
                rows.append(row)
    X = np.array(rows)
    got = np.array([scorer(*row) for row in X.tolist()])
    np.testing.assert_allclose(got, sklearn_fraud_score(model, X), rtol=0, atol=1e-9)


def test_float32_rounding_matches_numpy():
    values = [0.1, 1e-45, 3.4028235e38, 3.5e38, -3.5e38, 1e300, 123456.789, math.inf]
    for v in values:
        with np.errstate(over="ignore"):
            assert to_float32(v) == float(np.float32(v)), v


def test_null_nan_and_bad_values_give_null():
    _, data = trained()
    scorer = make_scorer(data)
    good = synthetic_features(1, seed=4)[0].tolist()
    assert isinstance(scorer(*good), float)
    for position, bad in [(0, None), (5, None), (7, None), (3, math.nan), (0, -1.0), (0, -7.5),
                          (2, "abc"), (4, b"1"), (6, object()), (1, [1, 2])]:
        row = list(good)
        row[position] = bad
        assert scorer(*row) is None, (position, bad)
    # infinities are values sklearn accepts (ensure_all_finite=False): scored, not NULL
    row = list(good)
    row[3] = math.inf
    assert 0 < scorer(*row) <= 1


def test_feature_order_mismatch_is_a_clear_error():
    _, data = trained()
    swapped = dict(data, features=[FEATURES[1], FEATURES[0], *FEATURES[2:]])
    with pytest.raises(ValueError, match="model data and feature columns disagree"):
        make_scorer(swapped)
    with pytest.raises(ValueError, match="model data and feature columns disagree"):
        register_duckdb_functions(duckdb.connect(), swapped)
    model, _ = trained()
    with pytest.raises(ValueError, match="model data and feature columns disagree"):
        export_isolation_forest(model, FEATURES[:7], threshold=0.6)


def test_bad_model_data_is_rejected_at_load_time():
    _, data = trained()
    with pytest.raises(ValueError, match="format"):
        Forest(dict(data, format="something-else"))
    with pytest.raises(ValueError, match="transforms"):
        Forest(dict(data, transforms={"amount": "sqrt"}))
    broken_tree = dict(data["trees"][0], threshold=data["trees"][0]["threshold"][:-1])
    with pytest.raises(ValueError, match="different lengths"):
        Forest(dict(data, trees=[broken_tree]))
    with pytest.raises(ValueError, match="not fitted"):
        export_isolation_forest(IsolationForest(), FEATURES, threshold=0.6)


def test_apply_transforms_matches_scalar_transform():
    X = synthetic_features(2_000, seed=5)
    X[0, 0] = -3.0  # outside log1p's domain -> NaN, like the scalar's None
    out = apply_transforms(X, FEATURES, TRANSFORMS)
    assert math.isnan(out[0, 0])
    assert out[1:, 0].tolist() == [math.log1p(v) for v in X[1:, 0].tolist()]
    assert np.array_equal(out[:, 1:], X[:, 1:])


def _duckdb_scores(data: dict, X: np.ndarray, nulls: np.ndarray | None = None) -> list:
    con = duckdb.connect()
    register_duckdb_functions(con, data)
    columns = {}
    for j, name in enumerate(FEATURES):
        mask = None if nulls is None else nulls[:, j]
        columns[name] = pa.array(X[:, j], mask=mask)
    con.register("features", pa.table(columns))
    args = ", ".join(FEATURES)
    return [r[0] for r in con.execute(f"SELECT akko_ai_anomaly({args}) FROM features").fetchall()]


def test_duckdb_vectorised_equals_scalar_with_nulls():
    _, data = trained(0.6)
    X = synthetic_features(20_000, seed=6)
    rng = np.random.default_rng(7)
    nulls = rng.random(X.shape) < 0.01
    X[rng.random(X.shape[0]) < 0.01, 3] = np.nan
    X[:5, 0] = -2.0  # log1p domain
    X[5, 5] = np.inf
    got = _duckdb_scores(data, X, nulls)
    scorer = make_scorer(data)
    expected = [scorer(*[None if n else v for v, n in zip(row, nrow)])
                for row, nrow in zip(X.tolist(), nulls.tolist())]
    assert [g is None for g in got] == [e is None for e in expected]
    assert sum(g is None for g in got) > 100
    pairs = np.array([(g, e) for g, e in zip(got, expected) if e is not None])
    np.testing.assert_allclose(pairs[:, 0], pairs[:, 1], rtol=0, atol=1e-12)


def test_duckdb_reregistration_replaces_the_model():
    _, data_a = trained(1.0)
    _, data_b = trained(0.6)
    con = duckdb.connect()
    row = synthetic_features(1, seed=8)[0].tolist()
    args = ", ".join(repr(v) for v in row)
    register_duckdb_functions(con, data_a)
    a = con.execute(f"SELECT akko_ai_anomaly({args})").fetchone()[0]
    register_duckdb_functions(con, data_b)
    b = con.execute(f"SELECT akko_ai_anomaly({args})").fetchone()[0]
    assert a == make_scorer(data_a)(*row) and b == make_scorer(data_b)(*row) and a != b
