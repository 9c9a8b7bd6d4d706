"""Dagster runs and steps as spans.

A run's steps execute in separate processes (the multiprocess executor, a K8s pod per run), and
the run itself has no process that lives exactly as long as it does. So the run span gets an id
derived from the run id: every step process computes the same id and parents its step span to
it, and the span itself is emitted once the run has ended (by the run-status sensors in
`sensors.py`, or by the caller of `execute_in_process`, e.g. `akko demo`), with the start and end
times from the run's stats. Its parent is the W3C `traceparent` run tag (set by the Airflow DAG,
`akko demo` or anyone launching the run); without that tag the run starts its own trace, whose
id is also derived from the run id.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg
from opentelemetry import trace
from opentelemetry.trace import SpanContext

from akko_assets.observability import tracing

# A run whose span its launcher emits itself (execute_in_process); the sensors leave it alone.
RUN_SPAN_TAG = "akko/run_span"
RUN_SPAN_BY_CALLER = "caller"


@dataclass(frozen=True)
class RunSpanIds:
    trace_id: int
    span_id: int
    parent: SpanContext | None  # the launcher's span, from the traceparent tag

    @property
    def context(self) -> SpanContext:
        return tracing.remote_parent(self.trace_id, self.span_id)

    @property
    def trace_id_hex(self) -> str:
        return format(self.trace_id, "032x")


def run_span_ids(run_id: str, tags: Mapping[str, str]) -> RunSpanIds:
    """Ids of the span of run `run_id`: the same in every process that knows the run."""
    parsed = tracing.parse_traceparent(tags.get(tracing.TRACEPARENT_TAG))
    span_id = tracing.derived_id(f"akko-dagster-run-span:{run_id}", 64)
    if parsed:
        trace_id, parent_span = parsed
        return RunSpanIds(trace_id, span_id, tracing.remote_parent(trace_id, parent_span))
    return RunSpanIds(tracing.derived_id(f"akko-dagster-run-trace:{run_id}", 128), span_id, None)


def _current_step() -> dg.AssetExecutionContext | None:
    try:
        return dg.AssetExecutionContext.get()
    except dg.DagsterInvariantViolationError:  # called outside a step (a direct call in a test): no step span
        return None


@contextlib.contextmanager
def step_span() -> Iterator[None]:
    """Span of the current Dagster step, child of its run's span; flushed when the step ends
    (the step's process may exit right after)."""
    context = _current_step()
    if context is None:
        yield
        return
    run = context.run
    ids = run_span_ids(run.run_id, run.tags)
    step_key = context.get_step_execution_context().step.key
    attributes = {
        "dagster.run_id": run.run_id,
        "dagster.job": run.job_name,
        "dagster.step_key": step_key,
        "dagster.asset_keys": sorted(k.to_user_string() for k in context.selected_asset_keys),
    }
    parent = trace.set_span_in_context(trace.NonRecordingSpan(ids.context))
    try:
        with tracing.span(f"dagster.step {step_key}", tracing.SERVICE_DAGSTER, context=parent, attributes=attributes):
            yield
    finally:
        tracing.flush()


def emit_run_span(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Record the finished run as a span (start/end from the run's stats); returns its trace id."""
    run = instance.get_run_by_id(run.run_id) or run  # the stored run has the final status
    ids = run_span_ids(run.run_id, run.tags)
    stats = instance.get_run_stats(run.run_id)
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp() if record is not None else time.time()
    start = stats.start_time or stats.launch_time or created
    end = stats.end_time or time.time()
    failed = run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
    tracing.emit_span(
        f"dagster.run {run.job_name}",
        tracing.SERVICE_DAGSTER,
        span_id=ids.span_id,
        trace_id=ids.trace_id,
        parent=ids.parent,
        start_ns=int(start * 1e9),
        end_ns=int(max(end, start) * 1e9),
        attributes={
            "dagster.run_id": run.run_id,
            "dagster.job": run.job_name,
            "dagster.run_status": run.status.value,
            "dagster.steps_succeeded": stats.steps_succeeded,
            "dagster.steps_failed": stats.steps_failed,
            "akko.triggered_by": run.tags.get("akko/triggered_by"),
        },
        error=f"run {run.status.value}" if failed else None,
    )
    tracing.flush()
    return ids.trace_id_hex
