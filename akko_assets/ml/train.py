"""Train and evaluate the Isolation Forest on the features of marts.fct_transactions.

Plain functions over Arrow/NumPy, so the asset, the notebook and the tests share them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from akko_assets.contract import MODEL_FEATURES
from trino_udfs.export import apply_transforms, export_isolation_forest

if TYPE_CHECKING:  # scikit-learn is imported where it is used: it costs ~1 s per process (run
    # workers, webserver, CLI) that only loads the definitions
    from sklearn.pipeline import Pipeline

# The model sees log1p(amount): amounts are log-normal, and a tree split on the log scale
# separates a 5 EUR card test from a 5 000 EUR night purchase as well as 50 from 500.
TRANSFORMS = {"amount": "log1p"}
MIN_TRAINING_ROWS = 500


class TrainingDataError(ValueError):
    pass


@dataclass
class TrainedModel:
    pipeline: Pipeline
    model_data: dict  # the exported trees akko_ai_anomaly scores with
    threshold: float
    metrics: dict[str, float]
    scores: np.ndarray
    labels: np.ndarray


def load_training_table(con: duckdb.DuckDBPyConnection, table: str = "marts.fct_transactions") -> pa.Table:
    try:
        columns = {row[0] for row in con.sql(f"DESCRIBE {table}").fetchall()}
    except duckdb.CatalogException:
        raise TrainingDataError(f"{table} does not exist: materialize marts/fct_transactions first") from None
    missing = [c for c in (*MODEL_FEATURES, "is_fraud") if c not in columns]
    if missing:
        raise TrainingDataError(
            f"{table} lacks feature columns {missing}: rebuild marts/fct_transactions (dbt) before ml/fraud_model"
        )
    select = ", ".join(f"CAST({c} AS DOUBLE) AS {c}" for c in MODEL_FEATURES)
    result = con.sql(f"SELECT {select}, is_fraud FROM {table} ORDER BY transaction_id").arrow()
    return result.read_all() if isinstance(result, pa.RecordBatchReader) else result


def feature_matrix(table: pa.Table) -> np.ndarray:
    return np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in MODEL_FEATURES])


def _transform(X: np.ndarray) -> np.ndarray:
    return apply_transforms(X, MODEL_FEATURES, TRANSFORMS)


def build_pipeline(seed: int, n_estimators: int = 200, max_samples: int = 256) -> Pipeline:
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline(
        [
            ("transform", FunctionTransformer(_transform)),
            ("forest", IsolationForest(n_estimators=n_estimators, max_samples=max_samples, random_state=seed, n_jobs=1)),
        ]
    )


def fraud_scores(pipeline: Pipeline, X: np.ndarray) -> np.ndarray:
    """fraud_score in (0, 1], higher = more anomalous (= -score_samples)."""
    return -pipeline.score_samples(X)


def evaluate(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, precision_score, recall_score, roc_auc_score

    flagged = scores > threshold
    top = scores >= np.quantile(scores, 0.99)
    base_rate = labels.mean() if len(labels) else 0.0
    has_both = 0 < labels.sum() < len(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if has_both else float("nan"),
        "average_precision": float(average_precision_score(labels, scores)) if has_both else float("nan"),
        "precision_at_threshold": float(precision_score(labels, flagged, zero_division=0)),
        "recall_at_threshold": float(recall_score(labels, flagged, zero_division=0)),
        "flagged_share": float(flagged.mean()),
        "lift_top_1pct": float(labels[top].mean() / base_rate) if base_rate else float("nan"),
        "fraud_base_rate": float(base_rate),
    }


def train(table: pa.Table, seed: int = 42, flag_rate: float = 0.03, n_estimators: int = 200) -> TrainedModel:
    """Fit on all rows (unsupervised: the label is used only to evaluate) and pick the threshold
    that flags `flag_rate` of transactions, a review budget a fraud team can work through."""
    if table.num_rows < MIN_TRAINING_ROWS:
        raise TrainingDataError(
            f"only {table.num_rows} rows in marts.fct_transactions (need {MIN_TRAINING_ROWS}): "
            "materialize postgres/raw_transactions with more rows"
        )
    X = feature_matrix(table)
    labels = table.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool)
    pipeline = build_pipeline(seed, n_estimators=n_estimators).fit(X)
    scores = fraud_scores(pipeline, X)
    threshold = float(np.quantile(scores, 1.0 - flag_rate))
    model_data = export_isolation_forest(pipeline.named_steps["forest"], MODEL_FEATURES, threshold, TRANSFORMS)
    return TrainedModel(pipeline, model_data, threshold, evaluate(scores, labels, threshold), scores, labels)
