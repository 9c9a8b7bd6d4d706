"""`new_transactions_sensor`: refresh the lakehouse when new rows land in PostgreSQL.

The cursor (kept by Dagster) holds two marks on the source's `updated_at`:

* `processed`: rows up to here went through a refresh run that SUCCEEDED;
* `requested`: the mark of the run asked for last, not yet seen succeed.

A tick first settles the outstanding request by looking up the newest run tagged with its mark
(a re-execution from the UI inherits the tag, so fixing and re-running a failed refresh counts):
still running → wait; succeeded → `processed` advances to it; failed → `processed` stays, so
the rows it did not process remain pending. A failed mark is not retried on its own (no crash
loop of failing runs); the next new rows request a run that covers everything since `processed`.

The run itself does not trust this cursor for what to copy: the replicate step reads rows past
the Iceberg table's own high-water mark, which only moves in the same Iceberg commit as the data.
So a run that dies half-way, or a cursor that is behind, makes the next run redo work, never skip
it. The cursor only decides WHEN to run.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Optional

import dagster as dg
import psycopg

from akko_assets.orchestration.jobs import TRANSACTIONS_KEY, incremental_refresh
from akko_assets.resources import PostgresResource
from akko_assets.resources.postgres import SourceUnavailable

SENSOR_NAME = "new_transactions_sensor"
MARK_TAG = "akko/source_mark"  # source max(updated_at) the run was requested for
NEW_ROWS_TAG = "akko/new_rows"
MINIMUM_INTERVAL_SECONDS = 30


@dataclass
class RefreshCursor:
    processed: Optional[str] = None  # ISO timestamp
    requested: Optional[str] = None  # ISO timestamp
    rows: Optional[int] = None  # source row count when `requested` was set (shown in the UI)

    @classmethod
    def load(cls, raw: Optional[str]) -> "RefreshCursor":
        if not raw:
            return cls()
        try:
            return cls(**{k: v for k, v in json.loads(raw).items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()  # an unreadable cursor re-baselines from the last replication, never crashes the tick

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class SourceMarks:
    rows: int
    max_updated_at: Optional[dt.datetime]
    new_rows: int  # rows with updated_at past the mark asked about


def read_source_marks(postgres: PostgresResource, since: Optional[dt.datetime]) -> Optional[SourceMarks]:
    """Row count, max(updated_at) and rows past `since` in akko.raw_transactions; None when the table is missing."""
    with postgres.connect() as conn:
        try:
            rows, max_updated_at, new_rows = conn.execute(
                "SELECT count(*), max(updated_at), count(*) FILTER (WHERE updated_at > %s) FROM akko.raw_transactions",
                (since or dt.datetime.min.replace(tzinfo=dt.timezone.utc),),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return SourceMarks(rows=rows, max_updated_at=max_updated_at, new_rows=new_rows)


def last_replicated_mark(instance: dg.DagsterInstance) -> Optional[str]:
    """High-water mark recorded by the last successful materialization of the Iceberg table."""
    event = instance.get_latest_materialization_event(dg.AssetKey.from_user_string(TRANSACTIONS_KEY))
    materialization = event.asset_materialization if event else None
    value = materialization.metadata.get("high_water_mark") if materialization else None
    text = getattr(value, "value", value)
    return str(text) if text else None


def _run_for_mark(instance: dg.DagsterInstance, mark: str) -> Optional[dg.DagsterRun]:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={MARK_TAG: mark}), limit=1)
    return runs[0] if runs else None


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def evaluate(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    """One tick; a plain function so tests can call it with a real instance and database."""
    cursor = RefreshCursor.load(context.cursor)

    def skip(reason: str) -> dg.SensorResult:
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor.dump())

    failed_run: Optional[dg.DagsterRun] = None
    if cursor.requested:
        run = _run_for_mark(context.instance, cursor.requested)
        if run is None:
            cursor.requested = None  # the request never became a run (or the run was deleted): decide afresh
        elif not run.is_finished:
            return skip(f"refresh run {run.run_id} ({run.status.value}) covers rows up to {cursor.requested}; waiting for it")
        elif run.is_success:
            cursor.processed, cursor.requested = cursor.requested, None
        else:
            failed_run = run  # `processed` stays: its rows are still pending

    if cursor.processed is None:
        cursor.processed = last_replicated_mark(context.instance)
        if cursor.processed is None:
            return skip(
                f"{TRANSACTIONS_KEY} has never been materialized on this instance: run the job "
                "`banking_fraud_demo` (Materialize all) first; this sensor only refreshes"
            )

    try:
        source = read_source_marks(postgres, _ts(cursor.processed))
    except SourceUnavailable as exc:
        return skip(f"source not checked: {exc}")
    if source is None or source.rows == 0 or source.max_updated_at is None:
        return skip("akko.raw_transactions is missing or empty: materialize postgres/raw_transactions first")
    if source.new_rows == 0:
        return skip(f"no new rows since {cursor.processed} ({source.rows} rows in the source)")

    mark = source.max_updated_at.isoformat()
    if failed_run is not None and cursor.requested and source.max_updated_at <= _ts(cursor.requested):
        return skip(
            f"refresh run {failed_run.run_id} for rows up to {cursor.requested} ended {failed_run.status.value}: "
            "fix the cause and re-execute it from the Dagster UI; new rows will also trigger a new attempt"
        )

    cursor.requested, cursor.rows = mark, source.rows
    context.log.info(f"{source.new_rows} new rows since {cursor.processed}: requesting {incremental_refresh.name}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"rows-through-{mark}",
                tags={MARK_TAG: mark, NEW_ROWS_TAG: str(source.new_rows)},
            )
        ],
        cursor=cursor.dump(),
    )


@dg.sensor(
    name=SENSOR_NAME,
    job=incremental_refresh,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.STOPPED,  # switch on in the UI (Automation) or `dagster sensor start`
    description=(
        "Watches akko.raw_transactions for rows past the last refreshed updated_at and requests "
        "`incremental_refresh` (no retraining). PostgreSQL down: the tick is skipped with the reason."
    ),
)
def new_transactions_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    return evaluate(context, postgres)
