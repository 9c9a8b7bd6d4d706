"""OTLP/HTTP export against a real receiver on loopback: an MLflow tracking server (it ingests OTLP
at /v1/traces), read back through MLflow's own client. The same exporter talks to Tempo or an
OpenTelemetry collector on k8s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from dagster_stack import BIN, REPO, free_port, stop

from akko_assets.observability import tracing

EXPERIMENT = "0"  # MLflow's Default experiment, present in every new store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("otlp")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    log = (tmp / "mlflow.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--default-artifact-root", str(tmp / "artifacts")],
        cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, (tmp / "mlflow.log").read_text()[-3000:]
            try:
                if requests.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "mlflow server not healthy in 180 s:\n" + (tmp / "mlflow.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        stop(proc)
        log.close()


@pytest.fixture
def otlp_env(mlflow_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [n for n in os.environ if n.startswith("OTEL_")] + ["TRACEPARENT"]:
        monkeypatch.delenv(name, raising=False)
    values = {"AKKO_HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": mlflow_url,
              "OTEL_EXPORTER_OTLP_HEADERS": f"x-mlflow-experiment-id={EXPERIMENT}"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    tracing.reset()
    yield values
    tracing.reset()


def mlflow_trace(url: str, trace_id: str, spans: int, timeout: float = 60):
    """The trace MLflow stored for an OpenTelemetry trace id, once it holds `spans` spans."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=url)
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = client.get_trace(f"tr-{trace_id}")
        except Exception:  # not ingested yet
            found = None
        if found is not None and len(found.data.spans) >= spans:
            return found
        assert time.monotonic() < deadline, f"trace {trace_id} not in MLflow after {timeout} s"
        time.sleep(0.5)


def test_spans_of_several_services_arrive_over_otlp_with_their_links(otlp_env: dict[str, str], mlflow_url: str) -> None:
    assert tracing.otlp_endpoint() == f"{mlflow_url}/v1/traces"
    started = time.time_ns()
    with tracing.span("airflow.task launch_dagster_run", tracing.SERVICE_AIRFLOW) as task:
        task_ctx = task.get_span_context()
        with tracing.query_span("SELECT count(*) FROM marts.fct_transactions WHERE region = 'EU'", role="akko-analyst") as record:
            record(1)
    run_span_id = tracing.derived_id("run-under-test", 64)
    tracing.emit_span("dagster.run banking_fraud_demo", tracing.SERVICE_DAGSTER, span_id=run_span_id, trace_id=task_ctx.trace_id,
                      parent=task_ctx, start_ns=started, end_ns=started + 2_500_000_000,
                      attributes={"dagster.run_id": "run-under-test"}, error="run FAILURE")
    tracing.flush()
    assert not (Path(otlp_env["AKKO_HOME"]) / "traces").exists()  # OTLP instead of the file, not both

    trace_id = format(task_ctx.trace_id, "032x")
    stored = mlflow_trace(mlflow_url, trace_id, spans=3)
    spans = {s.name: s for s in stored.data.spans}
    assert set(spans) == {"airflow.task launch_dagster_run", "engine.query", "dagster.run banking_fraud_demo"}
    task_id = format(task_ctx.span_id, "016x")
    assert spans["airflow.task launch_dagster_run"].span_id == task_id
    assert spans["airflow.task launch_dagster_run"].parent_id is None
    assert spans["engine.query"].parent_id == task_id
    assert spans["engine.query"].attributes["db.query.text"] == "SELECT COUNT(*) FROM marts.fct_transactions WHERE region = ?"
    assert spans["engine.query"].attributes["akko.role"] == "akko-analyst"
    run = spans["dagster.run banking_fraud_demo"]
    assert run.span_id == format(run_span_id, "016x") and run.parent_id == task_id
    assert (run.start_time_ns, run.end_time_ns) == (started, started + 2_500_000_000)
    assert run.status.status_code.value == "ERROR" and run.attributes["dagster.run_id"] == "run-under-test"


def test_a_short_lived_process_flushes_before_it_exits(otlp_env: dict[str, str], mlflow_url: str) -> None:
    """A CLI call ends right after its span: the batch is exported at exit (no explicit flush here)."""
    code = ("from akko_assets.observability import tracing\n"
            "with tracing.attached(None), tracing.span('aden.ask', 'aden', attributes={'aden.decision': 'answered'}) as s:\n"
            "    print(format(s.get_span_context().trace_id, '032x'))\n")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    env = {**os.environ, **otlp_env, "TRACEPARENT": parent}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0af7651916cd43dd8448eb211c80319c"
    stored = mlflow_trace(mlflow_url, "0af7651916cd43dd8448eb211c80319c", spans=1)
    (span,) = stored.data.spans
    assert span.name == "aden.ask" and span.parent_id == "b7ad6b7169203331"
    assert span.attributes["aden.decision"] == "answered"
