"""Register akko_ai_anomaly / akko_ai_sentiment into DuckDB as vectorised (Arrow) functions.

Same values as the scalar standard-library code (tests require equality): the anomaly function
walks the same precomputed tree arrays (``Forest``) with numpy, all trees one level per step; the
sentiment function calls the scalar code once per distinct memo (memos repeat a lot).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from duckdb.sqltypes import DOUBLE, VARCHAR

from trino_udfs.akko_ai_anomaly import Forest, transform_value
from trino_udfs.akko_ai_sentiment import akko_ai_sentiment


class VectorForest:
    """numpy view of a ``Forest``: all trees' nodes in flat arrays (global node ids).

    Leaves point at themselves, so every (row, tree) pair walks the same number of steps and one
    step moves all trees of a block of rows at once.
    """

    BLOCK_ROWS = 4096  # rows x trees per step stay cache-sized

    def __init__(self, forest: Forest) -> None:
        self.forest = forest
        column, threshold, child, leaf_path, roots = [], [], [], [], []
        offset, self.steps = 0, 0
        for tree in forest.trees:
            n = len(tree.left)
            roots.append(offset)
            for node in range(n):
                leaf = tree.left[node] == -1
                column.append(0 if leaf else tree.columns[tree.feature[node]])
                threshold.append(tree.threshold[node])
                # child[2 * g + went_right]; a leaf's children are itself
                child += [offset + node, offset + node] if leaf else [
                    offset + tree.left[node], offset + tree.right[node]]
            leaf_path += tree.leaf_path
            self.steps = max(self.steps, _max_depth(tree.left, tree.right))
            offset += n
        self.column = np.asarray(column, dtype=np.intp)
        self.threshold = np.asarray(threshold, dtype=np.float64)
        self.child = np.asarray(child, dtype=np.intp)
        self.leaf_path = np.asarray(leaf_path, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)

    def prepare(self, columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(rows as float32-rounded float64 matrix, valid mask); NaN/NULL/out-of-domain invalid."""
        X = np.column_stack(columns).astype(np.float64)
        valid = ~np.isnan(X).any(axis=1)
        for j, transform in enumerate(self.forest.transforms):
            if transform == "identity":
                continue
            col = X[:, j]
            idx = np.nonzero(valid)[0]
            # Scalar transform (math.log1p) per value: numpy's log1p differs in the last bit.
            mapped = [transform_value(float(v), transform) for v in col[idx]]
            bad = np.fromiter((m is None for m in mapped), dtype=bool, count=idx.size)
            col[idx] = [np.nan if m is None else m for m in mapped]
            valid[idx[bad]] = False
        with np.errstate(over="ignore"):  # beyond float32 range -> +-inf, as sklearn/struct
            X = X.astype(np.float32).astype(np.float64)
        X[~valid] = 0.0
        return X, valid

    def score(self, X: np.ndarray) -> np.ndarray:
        depth = np.concatenate([self._depth(X[i:i + self.BLOCK_ROWS])
                                for i in range(0, X.shape[0], self.BLOCK_ROWS)] or [np.zeros(0)])
        if self.forest.denominator == 0:
            return np.full(X.shape[0], 0.5)
        exponent = -(depth / self.forest.denominator)
        # Python's float ** (C pow) per row: numpy's power may differ in the last bit.
        return np.fromiter((2.0 ** e for e in exponent.tolist()), dtype=np.float64, count=exponent.size)

    def _depth(self, X: np.ndarray) -> np.ndarray:
        n_features = X.shape[1]
        flat = np.ascontiguousarray(X).ravel()
        base = (np.arange(X.shape[0], dtype=np.intp) * n_features)[:, None]
        node = np.broadcast_to(self.roots, (X.shape[0], self.roots.size)).copy()
        for _ in range(self.steps):
            went_right = flat[base + self.column[node]] > self.threshold[node]  # no NaN here
            node = self.child[2 * node + went_right]
        # cumsum adds left to right like the scalar loop (np.sum's pairwise order would not).
        return np.cumsum(self.leaf_path[node], axis=1)[:, -1]


def _max_depth(left: list[int], right: list[int]) -> int:
    depth = [0] * len(left)
    for node, (lo, hi) in enumerate(zip(left, right)):
        if lo != -1:
            depth[lo] = depth[hi] = depth[node] + 1
    return max(depth)


def _as_float_array(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    array = pc.cast(array, pa.float64())
    return np.asarray(pc.fill_null(array, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)


def anomaly_arrow_function(forest: Forest):
    """The Arrow UDF body for akko_ai_anomaly scoring with ``forest``."""
    vector = VectorForest(forest)

    # DuckDB checks the arity of the Python signature, so the 8 arguments are spelled out.
    def akko_ai_anomaly(amount, hour_of_day, is_night, amount_zscore, txn_count_1h,
                        txn_count_24h, is_new_merchant, country_changed) -> pa.Array:
        arrays = (amount, hour_of_day, is_night, amount_zscore, txn_count_1h, txn_count_24h,
                  is_new_merchant, country_changed)
        X, valid = vector.prepare([_as_float_array(a) for a in arrays])
        scores = vector.score(X)
        return pa.array(scores, type=pa.float64(), mask=~valid)

    return akko_ai_anomaly


def sentiment_arrow(memos: pa.Array | pa.ChunkedArray) -> pa.Array:
    """akko_ai_sentiment over an Arrow string array; scalar code once per distinct memo."""
    if isinstance(memos, pa.ChunkedArray):
        memos = memos.combine_chunks()
    encoded = pc.dictionary_encode(memos)
    values = [akko_ai_sentiment(m) for m in encoded.dictionary.to_pylist()]
    return pc.take(pa.array(values, type=pa.float64()), encoded.indices)


def register_duckdb_functions(con: duckdb.DuckDBPyConnection, model_data: dict) -> None:
    """Register ``akko_ai_anomaly(8 x DOUBLE) -> DOUBLE`` and ``akko_ai_sentiment(VARCHAR) -> DOUBLE``.

    Raises ValueError before registering anything when the model data is unusable (e.g. its
    features disagree with the SQL function's columns).
    """
    forest = Forest(model_data)
    anomaly = anomaly_arrow_function(forest)
    # A half-read result keeps DuckDB's removal uncommitted ("already exists" below): close it.
    con.execute("SELECT 1").fetchall()
    for name in ("akko_ai_anomaly", "akko_ai_sentiment"):
        try:
            con.remove_function(name)  # re-registration replaces the previous model
        except duckdb.InvalidInputException:  # not registered yet
            pass
    con.create_function("akko_ai_anomaly", anomaly, [DOUBLE] * len(forest.features), DOUBLE,
                        type="arrow", null_handling="special")
    con.create_function("akko_ai_sentiment", sentiment_arrow, [VARCHAR], DOUBLE,
                        type="arrow", null_handling="special")
