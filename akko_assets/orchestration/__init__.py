"""Jobs, sensors and schedules that drive the asset graph (filled in by the orchestration stage)."""

import dagster as dg

JOBS: list = []  # asset jobs (define_asset_job)
SENSORS: list[dg.SensorDefinition] = []
SCHEDULES: list[dg.ScheduleDefinition] = []
