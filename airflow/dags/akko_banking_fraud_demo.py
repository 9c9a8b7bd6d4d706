"""Airflow compatibility DAG: trigger the Dagster job `banking_fraud_demo` and watch it.

For teams still on Airflow. Dagster owns the pipeline (assets, lineage, checks); this DAG only
launches the job over Dagster's GraphQL API (dagster-graphql client), polls until the run ends,
and fails when the Dagster run fails. Each task is an OpenTelemetry span (service airflow-compat,
exported like the rest of the platform: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, else
$AKKO_HOME/traces/spans.jsonl); the run carries the launching task's W3C `traceparent` as a tag,
so the Dagster run, its steps and queries join that trace.

Environment:
  DAGSTER_GRAPHQL_URL   default http://127.0.0.1:3000/graphql (what `make ui` serves)
  DAGSTER_JOB_NAME      default banking_fraud_demo
  DAGSTER_POLL_SECONDS  default 2
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import inspect
import os
import re
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from airflow.sdk import dag, task
from airflow.sdk.exceptions import AirflowFailException

DEFAULT_GRAPHQL_URL = "http://127.0.0.1:3000/graphql"
TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def graphql_url() -> str:
    return os.environ.get("DAGSTER_GRAPHQL_URL", "").strip() or DEFAULT_GRAPHQL_URL


def dagster_client(url: str):
    """A DagsterGraphQLClient for a full GraphQL URL (the client wants host, port and path apart)."""
    from dagster_graphql import DagsterGraphQLClient

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AirflowFailException(f"DAGSTER_GRAPHQL_URL={url!r} is not an http(s) URL: use e.g. {DEFAULT_GRAPHQL_URL}")
    prefix = parts.path.rstrip("/")
    prefix = prefix[: -len("/graphql")] if prefix.endswith("/graphql") else prefix
    return DagsterGraphQLClient(
        parts.hostname, port_number=parts.port, use_https=parts.scheme == "https", path_prefix=prefix, timeout=60
    )


def unreachable(url: str, exc: Exception) -> AirflowFailException:
    return AirflowFailException(
        f"Dagster webserver is not reachable at {url} ({type(exc).__name__}): start it with `make ui` "
        "(or point DAGSTER_GRAPHQL_URL at a running dagster-webserver)"
    )


def is_connection_error(exc: BaseException) -> bool:
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def current_traceparent() -> str:
    """The active OpenTelemetry span's traceparent, or a fresh W3C one when no tracer is set up."""
    try:
        from opentelemetry import propagate

        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        if TRACEPARENT_RE.match(carrier.get("traceparent", "")):
            return carrier["traceparent"]
    except ImportError:
        pass
    # W3C Trace Context: version 00, 16-byte trace id, 8-byte parent id, flags 01 (sampled).
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@functools.cache
def tracing_module():
    """akko_assets.observability.tracing: installed, or loaded by path (it needs only OpenTelemetry,
    which Airflow ships) from a copy beside this DAG (`akko_tracing.py`, as a DAG ConfigMap would
    hold it) or the repository around this DAG folder; None when none exists."""
    try:
        from akko_assets.observability import tracing

        return tracing
    except ImportError:
        pass
    here = Path(__file__).resolve()
    candidates = (here.with_name("akko_tracing.py"), here.parent.parent.parent / "akko_assets" / "observability" / "tracing.py")
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location("akko_tracing", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def traced(task_id: str, parent_arg: str | None = None):
    """Run the task inside an `airflow.task <task_id>` span (service airflow-compat), flushed at its end.
    `parent_arg`: the argument holding a launched-run dict whose `traceparent` is the parent."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            tracing = tracing_module()
            if tracing is None:
                return fn(*args, **kwargs)
            launched = inspect.signature(fn).bind_partial(*args, **kwargs).arguments.get(parent_arg) if parent_arg else None
            parent = tracing.context_from_traceparent((launched or {}).get("traceparent")) if launched else None
            attributes = {"airflow.dag_id": "banking_fraud_demo", "airflow.task_id": task_id,
                          "dagster.run_id": (launched or {}).get("run_id")}
            try:
                from airflow.sdk import get_current_context

                attributes["airflow.run_id"] = str(get_current_context()["dag_run"].run_id)
            except Exception:
                pass  # outside a task run (a direct call): the span just lacks the run id
            try:
                with tracing.span(f"airflow.task {task_id}", tracing.SERVICE_AIRFLOW, context=parent, attributes=attributes):
                    return fn(*args, **kwargs)
            finally:
                tracing.flush()

        return wrapper

    return decorate


@dag(
    dag_id="banking_fraud_demo",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["akko", "dagster"],
    doc_md=__doc__,
    default_args={"retries": 0},
)
def banking_fraud_demo():
    @task(task_id="launch_dagster_run")
    @traced("launch_dagster_run")
    def launch_dagster_run(**context) -> dict[str, str]:
        from dagster_graphql import DagsterGraphQLClientError

        url = graphql_url()
        job = os.environ.get("DAGSTER_JOB_NAME", "").strip() or "banking_fraud_demo"
        traceparent = current_traceparent()
        dag_run = context.get("dag_run")
        tags = {
            "traceparent": traceparent,
            "akko/triggered_by": "airflow",
            "airflow/dag_id": "banking_fraud_demo",
            "airflow/run_id": str(getattr(dag_run, "run_id", "")),
        }
        try:
            run_id = dagster_client(url).submit_job_execution(job, tags=tags)
        except DagsterGraphQLClientError as exc:
            if is_connection_error(exc):
                raise unreachable(url, exc) from None
            raise AirflowFailException(f"Dagster at {url} refused to launch job {job!r}: {exc}") from None
        print(f"launched Dagster run {run_id} of {job} (traceparent {traceparent})")
        return {"run_id": run_id, "traceparent": traceparent, "url": url}

    @task(task_id="wait_for_dagster_run", execution_timeout=dt.timedelta(hours=2))
    @traced("wait_for_dagster_run", parent_arg="launched")
    def wait_for_dagster_run(launched: dict[str, str]) -> str:
        from dagster_graphql import DagsterGraphQLClientError

        url, run_id = launched["url"], launched["run_id"]
        base = url[: -len("/graphql")] if url.endswith("/graphql") else url
        client = dagster_client(url)
        poll = float(os.environ.get("DAGSTER_POLL_SECONDS", "2"))
        last = None
        while True:
            try:
                status = client.get_run_status(run_id).value
            except DagsterGraphQLClientError as exc:
                if is_connection_error(exc):
                    raise unreachable(url, exc) from None
                raise
            if status != last:
                print(f"Dagster run {run_id}: {status}")
                last = status
            if status == "SUCCESS":
                return status
            if status in ("FAILURE", "CANCELED"):
                raise AirflowFailException(f"Dagster run {run_id} ended {status}: see {base}/runs/{run_id}")
            time.sleep(poll)

    wait_for_dagster_run(launch_dagster_run())


banking_fraud_demo()
