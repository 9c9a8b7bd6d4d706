"""akko_ai_anomaly: Isolation Forest fraud score from exported model data, standard library only.

Trino runs Python UDFs in a sandbox with nothing but the standard library, so this file must not
import numpy/sklearn (a test runs it under ``python -I -S``). The same source is embedded into
the Trino ``CREATE FUNCTION`` statements (see trino_sql.py), so what runs in Trino is what is tested.

Reproduces ``sklearn.ensemble.IsolationForest.score_samples`` exactly:
  * inputs are rounded to float32 first (sklearn validates X with ``dtype=np.float32``), then
    compared with the float64 thresholds (``x <= threshold`` goes left);
  * each tree adds ``depth(leaf) + c(n_node_samples[leaf]) - 1`` (root depth 1, c = average path
    length of an unsuccessful BST search), summed tree by tree in fit order;
  * score = 2 ** -(sum / (n_trees * c(max_samples))).
fraud_score = -score_samples = that score, in (0, 1]; higher = more anomalous.
"""

import math
import struct

FORMAT = "akko-isolation-forest/v1"

# Copy of akko_assets.contract.MODEL_FEATURES (a test keeps them equal): importing the contract
# here would pull in pyarrow, which the Trino sandbox does not have.
EXPECTED_FEATURES = (
    "amount",
    "hour_of_day",
    "is_night",
    "amount_zscore",
    "txn_count_1h",
    "txn_count_24h",
    "is_new_merchant",
    "country_changed",
)
TRANSFORMS = ("identity", "log1p")
_EULER_GAMMA = 0.5772156649015329  # == numpy.euler_gamma


def average_path_length(n_samples: int) -> float:
    """c(n) of the Isolation Forest paper, as sklearn's ``_average_path_length``."""
    if n_samples <= 1:
        return 0.0
    if n_samples == 2:
        return 1.0
    n = float(n_samples)
    return 2.0 * (math.log(n - 1.0) + _EULER_GAMMA) - 2.0 * (n - 1.0) / n


def to_float32(value: float) -> float:
    """Round a float to the nearest float32, as numpy's ``astype(np.float32)`` does."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:  # beyond float32 range: numpy yields +-inf
        return math.copysign(math.inf, value)


def transform_value(value: float, transform: str) -> float | None:
    """One feature transform; None when the value is outside the transform's domain."""
    if transform == "log1p":
        # math.log1p, not numpy's: they differ in the last bit for a few % of inputs, and the
        # numpy side (export.apply_transforms) calls this same function to stay bit-identical.
        return math.log1p(value) if value > -1.0 else None
    return value


class Tree:
    """One isolation tree as flat arrays; ``leaf_path[node]`` is the per-leaf path length."""

    __slots__ = ("columns", "feature", "threshold", "left", "right", "counts", "leaf_path")

    def __init__(self, data: dict, n_features: int) -> None:
        self.columns = [int(c) for c in data["features"]]
        self.feature = [int(f) for f in data["feature"]]
        self.threshold = [float(t) for t in data["threshold"]]
        self.left = [int(c) for c in data["children_left"]]
        self.right = [int(c) for c in data["children_right"]]
        self.counts = counts = [int(n) for n in data["n_node_samples"]]
        sizes = {len(self.feature), len(self.threshold), len(self.left), len(self.right), len(counts)}
        if len(sizes) != 1 or not counts:
            raise ValueError("model data: tree arrays have different lengths; re-export the model")
        if any(not 0 <= c < n_features for c in self.columns):
            raise ValueError("model data: tree feature index out of range; re-export the model")
        depth = [0] * len(counts)
        depth[0] = 1  # sklearn's Tree.compute_node_depths counts the root as depth 1
        for node, (lo, hi) in enumerate(zip(self.left, self.right)):
            if lo != -1:  # children always come after their parent (depth-first builder)
                depth[lo] = depth[hi] = depth[node] + 1
        # Same operation order as sklearn: (depth + c(n)) - 1.0, all float64.
        self.leaf_path = [d + average_path_length(n) - 1.0 for d, n in zip(depth, counts)]

    def path_length(self, row: list[float]) -> float:
        node = 0
        left, right, feature, threshold, columns = (
            self.left, self.right, self.feature, self.threshold, self.columns)
        while left[node] != -1:
            if row[columns[feature[node]]] <= threshold[node]:
                node = left[node]
            else:
                node = right[node]
        return self.leaf_path[node]


class Forest:
    """Validated model data, ready to score rows of raw feature values."""

    def __init__(self, data: dict, expected_features: tuple[str, ...] = EXPECTED_FEATURES) -> None:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"model data: expected format {FORMAT!r}; export it with "
                             "trino_udfs.export.export_isolation_forest")
        features = tuple(data["features"])
        if features != tuple(expected_features):
            raise ValueError(
                f"model data and feature columns disagree: model has {list(features)}, "
                f"the SQL function passes {list(expected_features)}; retrain ml/fraud_model "
                "on the current feature columns")
        transforms = data.get("transforms") or {}
        unknown = {k: v for k, v in transforms.items() if k not in features or v not in TRANSFORMS}
        if unknown:
            raise ValueError(f"model data: unknown transforms {unknown}; allowed: {TRANSFORMS}")
        self.features = features
        self.transforms = [transforms.get(name, "identity") for name in features]
        self.max_samples = int(data["max_samples"])
        self.threshold = float(data["threshold"])
        self.trees = [Tree(tree, len(features)) for tree in data["trees"]]
        if not self.trees:
            raise ValueError("model data: no trees; re-export the model")
        self.denominator = len(self.trees) * average_path_length(self.max_samples)

    def to_data(self) -> dict:
        """Canonical model data (plain str/int/float/list/dict only, so JSON == Python literal)."""
        return {
            "format": FORMAT,
            "features": list(self.features),
            "transforms": dict(zip(self.features, self.transforms)),
            "max_samples": self.max_samples,
            "threshold": self.threshold,
            "trees": [{
                "features": tree.columns, "feature": tree.feature, "threshold": tree.threshold,
                "children_left": tree.left, "children_right": tree.right,
                "n_node_samples": tree.counts,
            } for tree in self.trees],
        }

    def prepare_row(self, values) -> list[float] | None:
        """Raw SQL values -> transformed float32-rounded row; None if any is NULL or bad."""
        if len(values) != len(self.features):
            return None
        row = []
        for value, transform in zip(values, self.transforms):
            if value is None or isinstance(value, (str, bytes)):
                return None
            try:
                x = float(value)
            except (TypeError, ValueError, OverflowError):
                return None
            if x != x:  # NaN: no defined path in a tree trained without missing values
                return None
            x = transform_value(x, transform)
            if x is None:
                return None
            row.append(to_float32(x))
        return row

    def score_prepared(self, row: list[float]) -> float:
        depth = 0.0
        for tree in self.trees:  # sequential sum, same order as sklearn
            depth += tree.path_length(row)
        if self.denominator == 0:  # a single training sample: sklearn defines the score as 1
            return 2.0 ** -1.0
        return 2.0 ** (-(depth / self.denominator))

    def fraud_score(self, values) -> float | None:
        """fraud_score (= -score_samples) for one row of raw values; None for NULL/bad input."""
        try:
            row = self.prepare_row(values)
            return None if row is None else self.score_prepared(row)
        except Exception:  # never raise inside SQL: a bad value yields NULL
            return None


def make_scorer(data: dict, expected_features: tuple[str, ...] = EXPECTED_FEATURES):
    """The SQL function ``akko_ai_anomaly(amount, hour_of_day, ...)`` bound to one model.

    Raises ValueError at load time (not per row) when the model data is unusable.
    """
    forest = Forest(data, expected_features)

    def akko_ai_anomaly(amount, hour_of_day, is_night, amount_zscore, txn_count_1h,
                        txn_count_24h, is_new_merchant, country_changed):
        return forest.fraud_score((amount, hour_of_day, is_night, amount_zscore, txn_count_1h,
                                   txn_count_24h, is_new_merchant, country_changed))

    akko_ai_anomaly.forest = forest  # type: ignore[attr-defined]
    return akko_ai_anomaly
