"""Export a fitted IsolationForest to the plain model data akko_ai_anomaly scores with.

Runs in the training code (numpy/sklearn allowed), never in Trino.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from trino_udfs.akko_ai_anomaly import FORMAT, TRANSFORMS, Forest, transform_value

if TYPE_CHECKING:  # only annotations: importing scikit-learn costs ~1 s in every process
    from sklearn.ensemble import IsolationForest


def export_isolation_forest(
    model: IsolationForest,
    features: Sequence[str],
    threshold: float,
    transforms: Mapping[str, str] | None = None,
) -> dict:
    """JSON-serialisable model data (format ``akko-isolation-forest/v1``).

    ``features`` are the column names in the order the model was fitted on; ``threshold`` is
    the fraud_score above which a row is flagged; ``transforms`` maps a feature to "log1p"
    when the model was fitted on ``apply_transforms(X)`` rather than on raw values.
    """
    if not hasattr(model, "estimators_"):
        raise ValueError("export_isolation_forest: the model is not fitted; call fit() first")
    features = [str(f) for f in features]
    if model.n_features_in_ != len(features):
        raise ValueError(f"model data and feature columns disagree: the model was fitted on "
                         f"{model.n_features_in_} columns, got names {features}")
    transforms = dict(transforms or {})
    bad = {k: v for k, v in transforms.items() if k not in features or v not in TRANSFORMS}
    if bad:
        raise ValueError(f"export_isolation_forest: unknown transforms {bad}; allowed: {TRANSFORMS}")
    # score_samples only indexes columns per tree when features were subsampled; otherwise each
    # tree sees X as is (even though estimators_features_ may hold a permutation).
    subsample = model._max_features != model.n_features_in_
    trees = []
    for estimator, columns in zip(model.estimators_, model.estimators_features_):
        tree = estimator.tree_
        trees.append({
            "features": [int(c) for c in columns] if subsample else list(range(len(features))),
            "feature": tree.feature.tolist(),
            "threshold": tree.threshold.tolist(),
            "children_left": tree.children_left.tolist(),
            "children_right": tree.children_right.tolist(),
            "n_node_samples": tree.n_node_samples.tolist(),
        })
    data = {
        "format": FORMAT,
        "features": features,
        "transforms": {name: transforms.get(name, "identity") for name in features},
        "max_samples": int(model._max_samples),
        "threshold": float(threshold),
        "trees": trees,
    }
    Forest(data, tuple(features))  # fail here, at export, rather than in SQL
    return data


def apply_transforms(
    X: np.ndarray, features: Sequence[str], transforms: Mapping[str, str] | None
) -> np.ndarray:
    """The model-data transforms on a 2-D array (columns in ``features`` order), as float64.

    log1p uses the scalar ``math.log1p`` element-wise (not ``np.log1p``, which differs in the last
    bit for a few % of inputs) so training, DuckDB and Trino see bit-identical values. Values
    outside a transform's domain become NaN.
    """
    out = np.array(X, dtype=np.float64, copy=True)
    for j, name in enumerate(features):
        transform = (transforms or {}).get(name, "identity")
        if transform == "identity":
            continue
        column = out[:, j]
        ok = ~np.isnan(column)
        mapped = [transform_value(float(v), transform) for v in column[ok]]
        column[ok] = [math.nan if v is None else v for v in mapped]
    return out
