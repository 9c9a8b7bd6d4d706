"""Dagster asset `bi/akko_banking_fraud_dashboard` and the sensor that refreshes its cache."""

import dagster as dg

from akko_assets.errors import fails_clearly
from akko_assets.bi.provision import invalidate_cache, provision_dashboard
from akko_assets.bi.server import SupersetError, superset_url
from akko_assets.bi.serving import publish_serving_db, serving_db_path
from akko_assets.resources import AkkoSettingsResource, IcebergResource

DASHBOARD_KEY = dg.AssetKey(["bi", "akko_banking_fraud_dashboard"])
SERVICE_USER = "svc-superset"  # the dashboard's identity: akko-analyst, card_pan masked


@dg.asset(
    key=DASHBOARD_KEY,
    deps=[dg.AssetKey(["marts", "enriched_transactions"]), dg.AssetKey(["marts", "dim_customers"])],
    group_name="bi",
    kinds={"superset", "duckdb"},
    owners=["team:analytics-engineering"],
    description=(
        'Superset dashboard "AKKO Banking Fraud" (slug akko-banking-fraud), imported as code from superset_assets/. '
        f"It reads a serving DuckDB file holding only what {SERVICE_USER} may see (governed rewrite), "
        "swapped in atomically so it never blocks a run."
    ),
)
@fails_clearly
def akko_banking_fraud_dashboard(
    context: dg.AssetExecutionContext, settings: AkkoSettingsResource, iceberg: IcebergResource
) -> dg.MaterializeResult:
    from akko_assets.governance import GovernedExecutor, PolicyEngine, identity_for_user

    s = settings.get()
    identity = identity_for_user(SERVICE_USER)
    executor = GovernedExecutor(iceberg.engine, PolicyEngine())
    source = iceberg.engine()
    counts = publish_serving_db(source, serving_db_path(s), lambda sql: executor.rewrite(sql, identity))
    result = provision_dashboard(settings=s)
    context.log.info(f"dashboard at {result['url']} with {result['chart_count']} charts")
    return dg.MaterializeResult(
        metadata={
            "dashboard_url": dg.MetadataValue.url(result["url"]),
            "chart_count": result["chart_count"],
            "serving_rows": dg.MetadataValue.json(counts),
            "import_seconds": result["seconds"],
            "imported": result["imported"],
            "service_identity": SERVICE_USER,
        }
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="superset_cache_invalidation_sensor",
    description="After a successful pipeline run, drop Superset's cached chart data so the dashboard shows new rows.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def superset_cache_invalidation_sensor(context: dg.RunStatusSensorContext):
    if context.dagster_run.job_name not in ("banking_fraud_demo", "incremental_refresh"):
        return dg.SkipReason(f"run of {context.dagster_run.job_name} does not change the dashboard's data")
    try:
        cleared = invalidate_cache(superset_url())
    except SupersetError as exc:
        return dg.SkipReason(str(exc))
    context.log.info(f"invalidated the cache of {cleared} Superset datasets")
    return None
