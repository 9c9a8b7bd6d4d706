"""Orchestration as users drive it, against a real dagster-webserver + dagster-daemon.

One module-scoped stack (temporary DAGSTER_HOME with the project's dagster.yaml, temporary
AKKO_HOME, a PostgreSQL database of its own) serves every test here, in order:
materialize all through the UI's GraphQL mutation → screenshot of the asset graph → the sensor
refreshes exactly the new rows → a failed run does not advance the sensor → a sensor run that
arrives during a manual run waits for the Iceberg writer pool → the Airflow DAG drives the job.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import psycopg
import pytest
from dagster_stack import AS_OF, REPO, dagster_stack, gql

ROWS = 5000
DEAD_DSN = "postgresql://postgres@127.0.0.1:1/akko_nowhere"  # nothing listens on port 1
CHROMIUM = Path("/usr/bin/chromium")
AIRFLOW_VENV = Path(os.environ.get("AKKO_AIRFLOW_VENV", "") or REPO / ".venv-airflow")
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


# ---------------------------------------------------------------------------------------------
# GraphQL helpers (the same operations the Dagster UI sends)

LAUNCH_PIPELINE_EXECUTION = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""

RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status startTime endTime } } }"


@dataclass
class Stack:
    base_url: str
    graphql: str
    dagster_home: Path
    akko_home: Path
    dsn: str
    location: str
    repository: str
    started_seconds: float
    with_bi: bool  # a Superset of its own answers, so the dashboard asset can run
    figures: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def instance(self):
        import dagster as dg

        return dg.DagsterInstance.from_config(str(self.dagster_home))

    def launch(self, *, job: str = "__ASSET_JOB", asset_keys: Optional[list[list[str]]] = None,
               run_config: Optional[dict] = None, tags: Optional[dict[str, str]] = None) -> str:
        selector: dict[str, Any] = {"repositoryLocationName": self.location, "repositoryName": self.repository,
                                    "pipelineName": job}
        if not self.with_bi and job != "__ASSET_JOB":
            asset_keys = [k for k in job_keys(job) if k[0] != "bi"]  # a subset of the job, as the UI launches it
        if asset_keys is not None and not self.with_bi:
            asset_keys = [k for k in asset_keys if k[0] != "bi"]
        if asset_keys is not None:
            selector["assetSelection"] = [{"path": k} for k in asset_keys]
        params = {
            "selector": selector,
            "mode": "default",
            "runConfigData": run_config or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        }
        result = gql(self.graphql, LAUNCH_PIPELINE_EXECUTION, {"executionParams": params})["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def status(self, run_id: str) -> str:
        return gql(self.graphql, RUN_STATUS, {"id": run_id})["runOrError"]["status"]

    def wait(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = gql(self.graphql, RUN_STATUS, {"id": run_id})["runOrError"]
            if run["status"] in TERMINAL:
                return run
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not finish within {timeout} s")

    def failures(self, run_id: str) -> list[str]:
        messages = []
        for record in self.instance.all_logs(run_id):
            event = record.dagster_event
            if event and event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE", "PIPELINE_FAILURE"):
                error = getattr(event.event_specific_data, "error", None)
                messages.append(f"{record.step_key}: {error.message if error else record.user_message}")
        return messages

    def run_ok(self, run_id: str, timeout: float = 600) -> dict[str, Any]:
        run = self.wait(run_id, timeout)
        assert run["status"] == "SUCCESS", self.failures(run_id)
        return run


def job_keys(job: str) -> list[list[str]]:
    """Asset keys a job selects (resolved the way the code location resolves them)."""
    from akko_assets.definitions import defs

    return [list(k.path) for k in defs.resolve_job_def(job).asset_layer.selected_asset_keys]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    with dagster_stack(tmp_path_factory.mktemp("orchestration"), "akko_test_orch", rows=ROWS,
                       superset_timeout=180) as servers:
        location = servers.wait_for_location(timeout=240)
        ready = round(time.monotonic() - servers.started, 1)
        with_bi = servers.with_bi(timeout=300)
        stack = Stack(servers.base_url, servers.graphql, servers.dagster_home, servers.akko_home, servers.dsn,
                      location[0], location[1], ready, with_bi)
        stack.figures["webserver_ready_seconds"] = ready
        stack.figures["superset_ready_seconds"] = round(time.monotonic() - servers.started, 1) if with_bi else None
        yield stack
        print("\norchestration figures: " + json.dumps(stack.figures, indent=2))


# ---------------------------------------------------------------------------------------------
# data helpers (real PostgreSQL and Iceberg)


def valid_source_ids(dsn: str) -> set[str]:
    """Source rows the curated layer should hold: all minus the ones quarantined as malformed."""
    with psycopg.connect(dsn) as conn:
        ids = {r[0] for r in conn.execute("SELECT transaction_id FROM akko.raw_transactions")}
        rejected = conn.execute("SELECT to_regclass('akko.raw_transactions_rejects')").fetchone()[0]
        if rejected:
            ids -= {r[0] for r in conn.execute("SELECT transaction_id FROM akko.raw_transactions_rejects")}
    return ids


def curated_ids(table: str) -> list[str]:
    from akko_assets.resources.engine import connect_curated

    con = connect_curated()
    return [r[0] for r in con.sql(f"SELECT transaction_id FROM {table}").fetchall()]


def append_rows(dsn: str, rows: int, seed: int) -> set[str]:
    import datetime as dt

    from akko_assets.ingest.seed import seed_transactions

    before = valid_source_ids(dsn)
    result = seed_transactions(dsn, rows, seed, dt.date.fromisoformat(AS_OF), mode="append")
    assert result.rows_written == rows
    return valid_source_ids(dsn) - before


def evaluate_sensor(stack: Stack, cursor: Optional[str], dsn: Optional[str] = None):
    import dagster as dg

    from akko_assets.orchestration.sensors import new_transactions_sensor
    from akko_assets.resources import PostgresResource

    context = dg.build_sensor_context(instance=stack.instance, cursor=cursor,
                                      resources={"postgres": PostgresResource(dsn=dsn or stack.dsn)})
    return new_transactions_sensor(context)


def skip_message(result) -> str:
    return result.skip_reason.skip_message if result.skip_reason else ""


def step_seconds(stack: Stack, run_id: str) -> dict[str, float]:
    """How long each step of a run took (for the figures printed at the end)."""
    windows = step_windows(stack, run_id, pool=None)
    return {k: round(end - start, 1) for k, (start, end) in windows.items()}


def step_windows(stack: Stack, run_id: str, pool: Optional[str]) -> dict[str, tuple[float, float]]:
    """(start, end) of every step of the run whose op claims `pool` (every step when None)."""
    from dagster import DagsterEventType

    from akko_assets.definitions import defs

    pooled = set()
    for job_name in ("banking_fraud_demo", "incremental_refresh"):
        for node in defs.resolve_job_def(job_name).graph.node_dict.values():
            if getattr(node.definition, "pool", None) == pool:
                pooled.add(node.name)
    windows: dict[str, list[float]] = {}
    for record in stack.instance.all_logs(run_id, of_type={DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS,
                                                            DagsterEventType.STEP_FAILURE}):
        if record.step_key and (pool is None or record.step_key in pooled):
            windows.setdefault(record.step_key, []).append(record.timestamp)
    return {k: (min(v), max(v)) for k, v in windows.items()}


# ---------------------------------------------------------------------------------------------
# tests, in the order a user meets them


def test_materialize_all_through_the_ui_mutation(stack: Stack) -> None:
    nodes = gql(stack.graphql, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
    keys = [n["assetKey"]["path"] for n in nodes]
    for stage in (["postgres", "raw_transactions"], ["iceberg", "banking", "transactions"],
                  ["staging", "stg_transactions"], ["marts", "fct_transactions"], ["marts", "dim_customers"]):
        assert stage in keys, f"{'/'.join(stage)} missing from the asset graph: {keys}"
    started = time.monotonic()
    run_id = stack.launch(asset_keys=keys)  # what "Materialize all" sends (minus bi/ without Superset)
    stack.run_ok(run_id, timeout=700)
    stack.figures["materialize_all_seconds"] = round(time.monotonic() - started, 1)
    stack.figures["materialize_all_steps"] = step_seconds(stack, run_id)
    stack.state["asset_keys"] = keys

    expected = valid_source_ids(stack.dsn)
    assert len(expected) > ROWS * 0.95
    iceberg = curated_ids("banking.transactions")
    assert len(iceberg) == len(set(iceberg)) and set(iceberg) == expected
    assert set(curated_ids("marts.fct_transactions")) == expected


def test_asset_graph_screenshot_shows_every_stage(stack: Stack, screenshot_path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Chromium missing: `apt-get install -y chromium` (.ci/run does it)")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright into .venv (test extra)")
    screenshot = screenshot_path("asset-graph.png")
    keys = stack.state.get("asset_keys") or [n["assetKey"]["path"] for n in
                                               gql(stack.graphql, "{ assetNodes { assetKey { path } } }")["assetNodes"]]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1800, "height": 900})
            page.goto(f"{stack.base_url}/asset-groups", wait_until="networkidle")
            page.get_by_text("Materialize all").first.wait_for(timeout=60_000)
            page.wait_for_timeout(1500)
            # Groups start collapsed when there are several: expand them all (the graph's ⌥E shortcut).
            page.mouse.click(1200, 200)
            page.keyboard.press("Alt+e")
            labels = page.locator('[class*="AssetNode_assetName"]')
            labels.first.wait_for(timeout=30_000)
            # Statuses load after the nodes (slowly on a busy machine): wait for every node to turn
            # green, or for 30 s, then let the assertions below say which did not.
            try:
                page.wait_for_function(
                    """n => { const els = [...document.querySelectorAll('[class*="AssetNode_assetName"]')];
                              return els.length >= n && els.every(e => (e.parentElement.getAttribute('style') || '').includes('green')); }""",
                    arg=len(keys), timeout=30_000)
            except playwright.TimeoutError:
                pass
            names = labels.all_inner_texts()
            # Node colours: green once materialized (grey when never, red when failed).
            styles = labels.evaluate_all("els => els.map(e => e.parentElement.getAttribute('style') || '')")
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()

    def shown(name: str) -> bool:
        # The zoomed-out graph truncates long names in the middle ("enri…_transactions").
        for label in names:
            head, _, tail = label.partition("…")
            if label == name or (_ and name.startswith(head) and name.endswith(tail)):
                return True
        return False

    missing = ["/".join(k) for k in keys if not shown(k[-1])]
    assert not missing, f"not on the asset graph: {missing}; labels seen: {names}"
    assert len(names) == len(keys), names
    assert all("green" in style for style in styles), dict(zip(names, styles))
    assert screenshot.stat().st_size > 20_000


def test_sensor_refreshes_exactly_the_new_rows(stack: Stack) -> None:
    from akko_assets.orchestration.sensors import MARK_TAG, NEW_ROWS_TAG, RefreshCursor

    # Nothing new since "materialize all": the first tick baselines on the last replication.
    idle = evaluate_sensor(stack, None)
    assert not idle.run_requests and "no new rows" in skip_message(idle)
    baseline = RefreshCursor.load(idle.cursor)
    assert baseline.processed and baseline.requested is None

    iceberg_before = set(curated_ids("banking.transactions"))
    new_ids = append_rows(stack.dsn, 1000, seed=4242)
    assert len(new_ids) > 950 and not new_ids & iceberg_before

    tick = evaluate_sensor(stack, idle.cursor)
    assert len(tick.run_requests) == 1, skip_message(tick)
    request = tick.run_requests[0]
    assert request.tags[NEW_ROWS_TAG] == "1000"
    assert RefreshCursor.load(tick.cursor).processed == baseline.processed  # not advanced before the run succeeds

    # The daemon would submit the request to the queue; do the same over GraphQL, and time it.
    started = time.monotonic()
    run_id = stack.launch(job="incremental_refresh", tags=dict(request.tags))
    run = stack.run_ok(run_id, timeout=400)
    stack.figures["incremental_refresh_1000_rows_seconds"] = round(time.monotonic() - started, 1)
    stack.figures["incremental_refresh_1000_rows_run_seconds"] = round(run["endTime"] - run["startTime"], 1)
    stack.figures["incremental_refresh_1000_rows_steps"] = step_seconds(stack, run_id)

    iceberg_after = curated_ids("banking.transactions")
    assert len(iceberg_after) == len(set(iceberg_after))
    assert set(iceberg_after) - iceberg_before == new_ids
    assert set(iceberg_after) == valid_source_ids(stack.dsn)
    fct = curated_ids("marts.fct_transactions")
    assert len(fct) == len(set(fct)) and set(fct) == set(iceberg_after)

    settled = evaluate_sensor(stack, tick.cursor)
    assert not settled.run_requests and "no new rows" in skip_message(settled)
    assert RefreshCursor.load(settled.cursor).processed == request.tags[MARK_TAG]
    stack.state["cursor"] = settled.cursor


def test_failed_run_does_not_advance_the_cursor(stack: Stack) -> None:
    from akko_assets.definitions import defs
    from akko_assets.orchestration.sensors import MARK_TAG, RefreshCursor
    from akko_assets.resources import PostgresResource

    cursor = stack.state["cursor"]
    processed = RefreshCursor.load(cursor).processed
    new_ids = append_rows(stack.dsn, 200, seed=777)
    tick = evaluate_sensor(stack, cursor)
    assert len(tick.run_requests) == 1, skip_message(tick)
    request = tick.run_requests[0]

    # The requested run dies: PostgreSQL goes away before replication reads it.
    job = defs.resolve_job_def("incremental_refresh")
    failed = job.execute_in_process(instance=stack.instance, tags=dict(request.tags), raise_on_error=False,
                                    resources={"postgres": PostgresResource(dsn=DEAD_DSN)})
    assert not failed.success

    after_failure = evaluate_sensor(stack, tick.cursor)
    state = RefreshCursor.load(after_failure.cursor)
    assert not after_failure.run_requests  # no automatic retry loop
    assert state.processed == processed and state.requested == request.tags[MARK_TAG]
    assert failed.run_id in skip_message(after_failure) and "re-execute" in skip_message(after_failure)
    assert not new_ids & set(curated_ids("banking.transactions"))

    # PostgreSQL down during a tick: skipped with the reason and the fix, cursor untouched.
    down = evaluate_sensor(stack, after_failure.cursor, dsn=DEAD_DSN)
    assert not down.run_requests
    assert "not reachable" in skip_message(down) and "akko services up" in skip_message(down)
    assert RefreshCursor.load(down.cursor).processed == processed

    # The user re-executes the failed run from the UI (same tags): the sensor then moves on.
    user_tags = {k: v for k, v in failed.dagster_run.tags.items() if not k.startswith(("dagster/", ".dagster"))}
    run_id = stack.launch(job="incremental_refresh", tags=user_tags)
    stack.run_ok(run_id, timeout=400)
    recovered = evaluate_sensor(stack, down.cursor)
    assert RefreshCursor.load(recovered.cursor).processed == request.tags[MARK_TAG]
    assert "no new rows" in skip_message(recovered)
    assert new_ids <= set(curated_ids("banking.transactions"))
    assert set(curated_ids("marts.fct_transactions")) == valid_source_ids(stack.dsn)
    stack.state["cursor"] = recovered.cursor


def test_sensor_run_waits_while_a_manual_run_writes_iceberg(stack: Stack) -> None:
    """A manual full refresh holds the `iceberg_writer` pool step by step; the sensor's run waits."""
    started = time.monotonic()
    # What a user launches from the job's Launchpad: the same job, full mirror instead of a MERGE.
    manual = stack.launch(job="incremental_refresh",
                          run_config={"ops": {"iceberg__banking__transactions": {"config": {"full_refresh": True}}}})

    # Wait until the manual run is inside its longest Iceberg-writing step (dbt), then new rows land.
    deadline = time.monotonic() + 300
    windows: dict[str, tuple[float, float]] = {}
    while time.monotonic() < deadline:
        windows = step_windows(stack, manual, "iceberg_writer")
        if "akko_dbt_models" in windows or stack.status(manual) in TERMINAL:
            break
        time.sleep(0.3)
    assert "akko_dbt_models" in windows, stack.failures(manual)
    new_ids = append_rows(stack.dsn, 300, seed=31337)
    tick = evaluate_sensor(stack, stack.state["cursor"])
    assert len(tick.run_requests) == 1, skip_message(tick)
    sensor_launched_at = time.time()
    sensor_run = stack.launch(job="incremental_refresh", tags=dict(tick.run_requests[0].tags))

    manual_run = stack.run_ok(manual, timeout=400)
    stack.figures["full_refresh_run_seconds"] = round(manual_run["endTime"] - manual_run["startTime"], 1)
    stack.figures["full_refresh_end_to_end_seconds"] = round(time.monotonic() - started, 1)
    stack.figures["full_refresh_steps"] = step_seconds(stack, manual)
    stack.run_ok(sensor_run, timeout=400)

    manual_windows = step_windows(stack, manual, "iceberg_writer")
    sensor_windows = step_windows(stack, sensor_run, "iceberg_writer")
    assert {"iceberg__banking__transactions", "akko_dbt_models"} <= set(manual_windows) & set(sensor_windows)
    # (The queue holds the run while its first step's pool is taken, so the wait shows as "Queued".)
    stack.figures["sensor_run_launch_to_first_iceberg_write_seconds"] = round(
        sensor_windows["iceberg__banking__transactions"][0] - sensor_launched_at, 1)
    for m_step, (m_start, m_end) in manual_windows.items():
        for s_step, (s_start, s_end) in sensor_windows.items():
            assert s_end <= m_start or s_start >= m_end, (
                f"{s_step} of the sensor run ran {s_start:.1f}-{s_end:.1f} while {m_step} of the manual run "
                f"ran {m_start:.1f}-{m_end:.1f}: two runs wrote Iceberg at once"
            )
    assert new_ids <= set(curated_ids("banking.transactions"))
    assert set(curated_ids("marts.fct_transactions")) == valid_source_ids(stack.dsn)
    stack.state["cursor"] = tick.cursor


@pytest.mark.airflow
def test_airflow_dag_runs_the_dagster_job(stack: Stack, tmp_path: Path) -> None:
    """`airflow dags test banking_fraud_demo` launches a Dagster job over GraphQL and watches it.

    The DAG launches `banking_fraud_demo` by default; here DAGSTER_JOB_NAME points it at
    `incremental_refresh` (the same GraphQL path, a shorter run): "materialize all" was already
    run through the UI mutation above, and a second full run would double this module's time.
    """
    airflow = AIRFLOW_VENV / "bin" / "airflow"
    if not stack.with_bi:
        pytest.skip("the job includes the dashboard: needs .venv-superset (scripts/setup_superset.sh)")
    if not airflow.exists():
        pytest.skip(f"{airflow} missing: run `bash scripts/setup_airflow.sh` (or `make airflow`)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DAGSTER_HOME"))}
    env.pop("VIRTUAL_ENV", None)
    env.update(AIRFLOW_HOME=str(tmp_path / "airflow_home"), AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "airflow" / "dags"),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", DAGSTER_GRAPHQL_URL=stack.graphql, DAGSTER_POLL_SECONDS="1",
               DAGSTER_JOB_NAME="incremental_refresh")
    migrated = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    before = {r.run_id for r in stack.instance.get_runs()}
    started = time.monotonic()
    result = subprocess.run([str(airflow), "dags", "test", "banking_fraud_demo"], env=env,
                            capture_output=True, text=True, timeout=800)
    stack.figures["airflow_dag_test_seconds"] = round(time.monotonic() - started, 1)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    new_runs = [r for r in stack.instance.get_runs() if r.run_id not in before]
    assert len(new_runs) == 1, [r.run_id for r in new_runs]
    run = new_runs[0]
    assert run.job_name == "incremental_refresh" and run.is_success
    assert run.tags.get("akko/triggered_by") == "airflow"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", run.tags.get("traceparent", "")), run.tags
    assert run.run_id in output
    assert set(curated_ids("marts.fct_transactions")) == valid_source_ids(stack.dsn)

