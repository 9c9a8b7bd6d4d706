"""Jobs, sensors and schedules that drive the asset graph, and the local Dagster instance config.

* `incremental_refresh` + `new_transactions_sensor`: new PostgreSQL rows → incremental refresh.
* `retrain_fraud_model` + `retrain_weekly`: the model is retrained on a schedule, never by a refresh.
* `prepare_dagster_home(settings)`: DAGSTER_HOME with concurrency pools (one Iceberg writer at a time).
"""

import dagster as dg

from akko_assets.orchestration.instance import prepare_dagster_home
from akko_assets.orchestration.jobs import incremental_refresh, retrain_fraud_model
from akko_assets.orchestration.schedules import retrain_weekly
from akko_assets.orchestration.sensors import new_transactions_sensor

JOBS: list = [incremental_refresh, retrain_fraud_model]  # asset jobs (define_asset_job)
SENSORS: list[dg.SensorDefinition] = [new_transactions_sensor]
SCHEDULES: list[dg.ScheduleDefinition] = [retrain_weekly]

__all__ = ["JOBS", "SENSORS", "SCHEDULES", "prepare_dagster_home"]
