"""The one Definitions object: every stage's assets, checks, jobs, sensors and resources."""

from __future__ import annotations

import dagster as dg

from akko_assets.bi import assets as bi_assets
from akko_assets.catalog import assets as catalog_assets
from akko_assets.enrich import assets as enrich_assets
from akko_assets.ingest import assets as ingest_assets
from akko_assets.lakehouse import assets as lakehouse_assets
from akko_assets.marts import assets as marts_assets
from akko_assets.ml import assets as ml_assets
from akko_assets.observability import SENSORS as TRACE_SENSORS
from akko_assets.orchestration import JOBS, SCHEDULES, SENSORS
from akko_assets.resources import build_resources
from akko_assets.settings import load_settings

banking_fraud_demo = dg.define_asset_job(
    "banking_fraud_demo",
    selection=dg.AssetSelection.all(),
    description="The whole flow: seed → Iceberg → dbt marts → model → enrichment → catalog → dashboard.",
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingest_assets, lakehouse_assets, marts_assets, ml_assets, enrich_assets, catalog_assets, bi_assets]),
    asset_checks=dg.load_asset_checks_from_modules([lakehouse_assets, ml_assets]),
    jobs=[banking_fraud_demo, *JOBS],
    sensors=[*SENSORS, bi_assets.superset_cache_invalidation_sensor, *TRACE_SENSORS],
    schedules=SCHEDULES,
    resources=build_resources(),
    # Locally every step runs in the run's process: on 2 cores, a process per step spends more
    # time importing the definitions than working. On k8s the run pod uses the same default.
    executor=dg.in_process_executor if load_settings().profile == "local" else dg.multiprocess_executor,
)
