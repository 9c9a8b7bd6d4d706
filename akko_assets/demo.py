"""`akko demo`: run the whole graph once in process against a persistent Dagster instance (so the
run also shows in the UI) and print what a newcomer wants to know: rows, seconds, where to look."""

from __future__ import annotations

import os
import time
from collections import defaultdict

from akko_assets.settings import Settings


def prepare_instance(settings: Settings):
    import dagster as dg

    try:
        from akko_assets.orchestration.instance import prepare_dagster_home
    except ImportError:  # the orchestration stage provides the full instance config
        prepare_dagster_home = None
    if prepare_dagster_home is not None:
        home = prepare_dagster_home(settings)
    else:
        home = settings.home / "dagster"
        home.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("DAGSTER_HOME"):  # unset or empty
        os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    """Seconds per step, from the run's event log (events carry their timestamps there)."""
    starts, seconds = {}, {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts:
            seconds[event.step_key] = entry.timestamp - starts[event.step_key]
    return seconds


def table_rows(settings: Settings) -> dict[str, int]:
    """Row counts of the source and of every curated table, as readers see them."""
    from akko_assets.resources.engine import connect_curated
    from akko_assets.resources.postgres import connect

    counts = {}
    with connect(settings.pg_dsn) as conn:
        counts["postgres akko.raw_transactions"] = conn.execute("SELECT count(*) FROM akko.raw_transactions").fetchone()[0]
    con = connect_curated(settings)
    for schema, name in con.sql(
        "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2"
    ).fetchall():
        counts[f"iceberg {schema}.{name}"] = con.sql(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
    return counts


def run_demo(settings: Settings, rows: int | None = None) -> int:
    from akko_assets.resources.postgres import SourceUnavailable
    from akko_assets.services import ServiceError, up

    try:
        print(up(settings))
    except (ServiceError, SourceUnavailable) as exc:
        print(f"error: {exc}")
        return 1
    instance = prepare_instance(settings)
    from akko_assets.definitions import defs

    job = defs.resolve_job_def("banking_fraud_demo")
    run_config = {"ops": {"postgres__raw_transactions": {"config": {"rows": rows}}}} if rows else None
    from akko_assets.observability import tracing
    from akko_assets.observability.runs import RUN_SPAN_BY_CALLER, RUN_SPAN_TAG, emit_run_span

    started = time.perf_counter()
    # The demo is the root of one trace: the run (and its steps and queries) hang under it.
    with tracing.span("akko demo", tracing.SERVICE_DAGSTER, attributes={"akko.rows": rows or settings.rows}):
        tags = {tracing.TRACEPARENT_TAG: tracing.current_traceparent() or "", RUN_SPAN_TAG: RUN_SPAN_BY_CALLER}
        result = job.execute_in_process(instance=instance, run_config=run_config, raise_on_error=False,
                                        tags={k: v for k, v in tags.items() if v})
        trace_id = emit_run_span(instance, result.dagster_run)
    tracing.flush()
    total = time.perf_counter() - started

    checks: dict[str, list[str]] = defaultdict(list)
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            ev = event.event_specific_data
            checks[ev.asset_key.to_user_string()].append(f"{ev.check_name}:{'ok' if ev.passed else 'FAILED'}")
    seconds = _step_seconds(instance, result.run_id)
    print()
    print(f"AKKO Banking Fraud demo: run {result.run_id} {'succeeded' if result.success else 'FAILED'} in {total:.1f} s")
    print(f"{'table':45} {'rows':>10}")
    for name, count in table_rows(settings).items():
        print(f"{name:45} {count:>10}")
    print()
    print(f"{'step':45} {'seconds':>10}")
    for step, secs in seconds.items():
        print(f"{step:45} {secs:10.2f}")
    failed_checks = [c for cs in checks.values() for c in cs if c.endswith("FAILED")]
    print()
    print(f"asset checks: {sum(len(c) for c in checks.values())} evaluated, {len(failed_checks)} failed {failed_checks or ''}")
    print()
    print("Where to look:")
    print("  Dagster UI      make ui         -> http://127.0.0.1:3000 (this run is in its history)")
    print("  Dashboard       http://127.0.0.1:8088/superset/dashboard/akko-banking-fraud/"
          f" (admin password in {settings.home / 'superset' / 'secrets.json'})")
    print("  ADEN            akko ask \"Which regions saw a fraud rate above 5 % last week?\" --user carol")
    print("                  make aden       -> http://127.0.0.1:8501")
    print("  Governed SQL    akko sql \"SELECT region, count(*) FROM marts.fct_transactions GROUP BY 1\" --user erin")
    print("  MLflow          make mlflow-ui  -> http://127.0.0.1:5000")
    where = f"sent to {tracing.otlp_endpoint()}" if tracing.otlp_endpoint() else "akko trace last"
    print(f"  Trace           {trace_id} ({where})")
    if not result.success:
        for event in result.all_events:
            if event.event_type_value == "STEP_FAILURE":
                err = event.event_specific_data.error
                print(f"failed step {event.step_key}: {err.message.strip().splitlines()[-1] if err else ''}")
    return 0 if result.success else 1
