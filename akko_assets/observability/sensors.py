"""Run-status sensors that record each finished Dagster run as its span (see runs.py).

Running by default: without them a run's steps point at a parent span nobody writes, and
`akko trace` shows the steps as orphans. Each tick costs one read of the run-status events
since its cursor.
"""

from __future__ import annotations

import dagster as dg

from akko_assets.observability.runs import (
    RUN_SPAN_BY_CALLER,
    RUN_SPAN_TAG,
    emit_run_span,
)

MINIMUM_INTERVAL_SECONDS = 5


def record_run_span(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    run = context.dagster_run
    if run.tags.get(RUN_SPAN_TAG) == RUN_SPAN_BY_CALLER:
        return dg.SkipReason(f"run {run.run_id}: its launcher records the run span")
    trace_id = emit_run_span(context.instance, run)
    context.log.info(f"recorded the span of run {run.run_id} ({run.status.value}) in trace {trace_id}")
    return None


def _sensor(status: dg.DagsterRunStatus) -> dg.RunStatusSensorDefinition:
    @dg.run_status_sensor(
        run_status=status,
        name=f"trace_run_{status.value.lower()}_sensor",
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitor_all_code_locations=False,
        description=f"Records each {status.value} run as an OpenTelemetry span (the parent of its step spans).",
    )
    def trace_run_sensor(context: dg.RunStatusSensorContext):
        return record_run_span(context)

    return trace_run_sensor


SENSORS: list[dg.SensorDefinition] = [
    _sensor(dg.DagsterRunStatus.SUCCESS),
    _sensor(dg.DagsterRunStatus.FAILURE),
    _sensor(dg.DagsterRunStatus.CANCELED),
]
