"""Dagster asset `ml/fraud_model` and its quality check."""

import dagster as dg

from akko_assets.errors import fails_clearly
from akko_assets.ml.registry import MODEL_NAME, ALIAS, log_and_register, load_production_model_data, tracking_uri_for
from akko_assets.ml.train import feature_matrix, load_training_table, train
from akko_assets.resources import AkkoSettingsResource, IcebergResource

FRAUD_MODEL_KEY = dg.AssetKey(["ml", "fraud_model"])
ROC_AUC_FLOOR = 0.85


class FraudModelConfig(dg.Config):
    n_estimators: int = 200
    flag_rate: float = 0.03
    tolerance: float = 0.01


@dg.asset(
    key=FRAUD_MODEL_KEY,
    deps=[dg.AssetKey(["marts", "fct_transactions"])],
    group_name="ml",
    kinds={"scikitlearn", "mlflow"},
    owners=["team:fraud-ml"],
    description=f"Isolation Forest on the fct_transactions features, logged to MLflow and registered as {MODEL_NAME}@{ALIAS} (gated).",
)
@fails_clearly
def fraud_model(
    context: dg.AssetExecutionContext, config: FraudModelConfig, settings: AkkoSettingsResource, iceberg: IcebergResource
) -> dg.MaterializeResult:
    s = settings.get()
    table = load_training_table(iceberg.engine())
    trained = train(table, seed=s.seed, flag_rate=config.flag_rate, n_estimators=config.n_estimators)
    params = {"n_estimators": config.n_estimators, "max_samples": 256, "flag_rate": config.flag_rate,
              "seed": s.seed, "rows": table.num_rows, "features": ",".join(trained.model_data["features"])}
    result = log_and_register(trained, feature_matrix(table), s.home, params, tolerance=config.tolerance)
    context.log.info(f"{MODEL_NAME} v{result.version}: {result.reason}")
    return dg.MaterializeResult(
        metadata={
            **{k: round(v, 4) for k, v in trained.metrics.items()},
            "threshold": trained.threshold,
            "mlflow_run_id": result.run_id,
            "registered_version": result.version,
            "promoted": result.promoted,
            "promotion_reason": result.reason,
            "production_version": result.production_version,
            "previous_production_roc_auc": result.production_roc_auc if result.production_roc_auc is not None else -1.0,
            "tracking_uri": tracking_uri_for(s.home),
            "dagster/row_count": table.num_rows,
        }
    )


@dg.asset_check(asset=FRAUD_MODEL_KEY, description=f"The production model's ROC-AUC is at least {ROC_AUC_FLOOR}.")
def production_model_quality(settings: AkkoSettingsResource) -> dg.AssetCheckResult:
    import mlflow
    from mlflow.tracking import MlflowClient

    s = settings.get()
    data = load_production_model_data(s.home)
    client = MlflowClient(tracking_uri_for(s.home))
    version = client.get_model_version(MODEL_NAME, data["registry_version"])
    auc = client.get_run(version.run_id).data.metrics.get("roc_auc", 0.0)
    del mlflow
    return dg.AssetCheckResult(passed=auc >= ROC_AUC_FLOOR, metadata={"production_roc_auc": auc, "version": version.version})
