"""MLflow tracking and the `banking-fraud` registry with its gated `production` alias."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from akko_assets.ml.train import TrainedModel

MODEL_NAME = "banking-fraud"
ALIAS = "production"
EXPERIMENT = "akko-banking-fraud"
MODEL_DATA_ARTIFACT = "model_data.json"
DEFAULT_TOLERANCE = 0.01  # a new version may be this much worse on ROC-AUC and still be promoted


class RegistryUnavailable(RuntimeError):
    pass


class NoProductionModel(RuntimeError):
    pass


@dataclass
class RegistrationResult:
    run_id: str
    version: str
    promoted: bool
    new_roc_auc: float
    production_roc_auc: float | None
    production_version: str
    reason: str


def tracking_uri_for(home: Path) -> str:
    """k8s: the tracking server in MLFLOW_TRACKING_URI. Local: a SQLite store under AKKO_HOME (the
    registry needs a database backend), unless AKKO_MLFLOW_TRACKING_URI names a server.

    MLFLOW_TRACKING_URI is not read locally because mlflow.set_tracking_uri() itself exports it,
    which would pin every later AKKO_HOME of the process to the first one.
    """
    import os

    from akko_assets.settings import load_settings

    if load_settings().profile == "k8s":
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            raise RegistryUnavailable("MLFLOW_TRACKING_URI is not set: the k8s profile needs the MLflow server's URL")
        return os.environ["MLFLOW_TRACKING_URI"]
    if os.environ.get("AKKO_MLFLOW_TRACKING_URI"):
        return os.environ["AKKO_MLFLOW_TRACKING_URI"]
    (home / "mlflow").mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"


def _client(tracking_uri: str):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    try:
        client.search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - any transport/store error means the same to the user
        raise RegistryUnavailable(
            f"MLflow tracking store is unreachable at {tracking_uri} ({type(exc).__name__}): "
            "check MLFLOW_TRACKING_URI (k8s) / AKKO_MLFLOW_TRACKING_URI, or that AKKO_HOME is writable (local)"
        ) from None
    return client


def _experiment_id(client, home: Path) -> str:
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    artifact_location = None
    if client.tracking_uri.startswith("sqlite:"):
        artifact_location = (home / "mlflow" / "artifacts").as_uri()
    return client.create_experiment(EXPERIMENT, artifact_location=artifact_location)


def _plots(trained: TrainedModel, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.linspace(trained.scores.min(), trained.scores.max(), 60)
    ax.hist(trained.scores[~trained.labels], bins=bins, alpha=0.6, density=True, label="legitimate")
    ax.hist(trained.scores[trained.labels], bins=bins, alpha=0.6, density=True, label="fraud")
    ax.axvline(trained.threshold, color="black", linestyle="--", label="threshold")
    ax.set_xlabel("fraud_score")
    ax.set_title("Score distribution by label")
    ax.legend()
    paths.append(out / "score_distribution.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    precision, recall, _ = precision_recall_curve(trained.labels, trained.scores)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall")
    paths.append(out / "precision_recall.png")
    fig.savefig(paths[-1], dpi=100, bbox_inches="tight")
    plt.close(fig)
    return paths


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("scikit-learn", "numpy", "scipy", "cloudpickle", "pandas")]


def log_and_register(trained: TrainedModel, X_example: np.ndarray, home: Path, params: dict,
                     tolerance: float = DEFAULT_TOLERANCE) -> RegistrationResult:
    """Log the run, register a new version, and move the alias only if it is not worse."""
    import mlflow
    from mlflow.models import infer_signature

    from akko_assets.contract import MODEL_FEATURES

    tracking_uri = tracking_uri_for(home)
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, home)
    import pandas as pd

    example = pd.DataFrame(X_example[:5], columns=list(MODEL_FEATURES))
    with mlflow.start_run(experiment_id=experiment_id) as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({**params, "threshold": trained.threshold})
        mlflow.log_metrics({k: v for k, v in trained.metrics.items() if not math.isnan(v)})
        signature = infer_signature(example, trained.pipeline.score_samples(example.to_numpy()))
        model_info = mlflow.sklearn.log_model(
            trained.pipeline, name="model", signature=signature, input_example=example,
            serialization_format="cloudpickle",  # skops would need the FunctionTransformer trusted too
            # Listed, not inferred: inference imports the model in a subprocess (~10 s per run).
            pip_requirements=_pip_requirements(),
        )
        data_path = Path(tmp) / MODEL_DATA_ARTIFACT
        data_path.write_text(json.dumps(trained.model_data))
        mlflow.log_artifact(str(data_path))
        for plot in _plots(trained, Path(tmp)):
            mlflow.log_artifact(str(plot), artifact_path="plots")
        run_id = run.info.run_id

    version = mlflow.register_model(model_info.model_uri, MODEL_NAME).version
    new_auc = trained.metrics["roc_auc"]
    current = production_version(client)
    current_auc = client.get_run(current.run_id).data.metrics.get("roc_auc") if current else None
    if current is None:
        promoted, reason = True, "no production version yet"
    elif current_auc is None or new_auc >= current_auc - tolerance:
        promoted, reason = True, f"ROC-AUC {new_auc:.4f} is not worse than production {current_auc or float('nan'):.4f} - {tolerance}"
    else:
        promoted, reason = False, f"ROC-AUC {new_auc:.4f} is worse than production {current_auc:.4f} by more than {tolerance}"
    if promoted:
        client.set_registered_model_alias(MODEL_NAME, ALIAS, version)
    client.set_model_version_tag(MODEL_NAME, version, "promotion", reason)
    return RegistrationResult(
        run_id=run_id, version=str(version), promoted=promoted, new_roc_auc=new_auc,
        production_roc_auc=current_auc, production_version=str(version) if promoted else str(current.version),
        reason=reason,
    )


def production_version(client):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(MODEL_NAME, ALIAS)
    except MlflowException:
        return None


def load_production_model_data(home: Path) -> dict:
    """The exported trees of `banking-fraud@production`, for akko_ai_anomaly."""
    import mlflow

    client = _client(tracking_uri_for(home))
    version = production_version(client)
    if version is None:
        raise NoProductionModel(
            f"no model '{MODEL_NAME}' with alias '{ALIAS}' in the registry: materialize ml/fraud_model first"
        )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=MODEL_DATA_ARTIFACT, dst_path=tmp)
        except Exception as exc:  # noqa: BLE001
            raise NoProductionModel(
                f"artifact {MODEL_DATA_ARTIFACT} of {MODEL_NAME} v{version.version} is missing ({type(exc).__name__}): "
                "re-materialize ml/fraud_model (the artifact store may have been wiped)"
            ) from None
        data = json.loads(Path(path).read_text())
    data["registry_version"] = str(version.version)
    return data
