"""Airflow compatibility DAG: trigger the Dagster job `banking_fraud_demo` and watch it.

For teams still on Airflow. Dagster owns the pipeline (assets, lineage, checks); this DAG only
launches the job over Dagster's GraphQL API (dagster-graphql client), polls until the run ends,
and fails when the Dagster run fails. The run carries a W3C `traceparent` tag so its spans join
the Airflow task's trace.

Environment:
  DAGSTER_GRAPHQL_URL   default http://127.0.0.1:3000/graphql (what `make ui` serves)
  DAGSTER_JOB_NAME      default banking_fraud_demo
  DAGSTER_POLL_SECONDS  default 2
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import time
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
