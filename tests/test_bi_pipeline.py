"""The dashboard asset on the real pipeline's data, and cache refresh by the run-status sensor."""

from __future__ import annotations

import os
import socket

import dagster as dg
import pytest
from test_bi_superset import _chart_data, _chart_ids, _title

from akko_assets.bi import server
from akko_assets.bi.assets import DASHBOARD_KEY, superset_cache_invalidation_sensor
from akko_assets.governance import GovernedExecutor, PolicyEngine, identity_for_user
from akko_assets.ingest.seed import seed_transactions
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import MASK, load_settings

pytestmark = [
    pytest.mark.superset,
    pytest.mark.skipif(
        not (server.SUPERSET_VENV / "bin" / "superset").exists(),
        reason=f"no Superset virtualenv at {server.SUPERSET_VENV}: run scripts/setup_superset.sh",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def superset(pipeline_run):
    url = f"http://127.0.0.1:{_free_port()}"
    saved = os.environ.get("AKKO_SUPERSET_URL")
    os.environ["AKKO_SUPERSET_URL"] = url
    server.superset_up()
    try:
        yield url
    finally:
        server.superset_down()
        if saved is None:
            os.environ.pop("AKKO_SUPERSET_URL", None)
        else:
            os.environ["AKKO_SUPERSET_URL"] = saved


def _materialize(instance, keys):
    from akko_assets.definitions import defs

    job = defs.resolve_job_def("banking_fraud_demo")
    result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
    failures = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert result.success, failures
    return result


def _governed_rate_by_region() -> dict[str, float]:
    executor = GovernedExecutor(lambda: connect_curated(load_settings()), PolicyEngine())
    result = executor.execute(
        "SELECT region, avg(CASE WHEN is_flagged THEN 1.0 ELSE 0.0 END) FROM marts.enriched_transactions GROUP BY region",
        identity_for_user("svc-superset"),
    )
    return {region: float(rate) for region, rate in result.rows}


def _chart_rate_by_region(url: str) -> dict[str, float]:
    rows = _chart_data(url, _chart_ids(url)[_title("fraud_rate_by_region")])[0]["data"]
    region_key = "region"
    value_key = next(k for k in rows[0] if k != region_key)
    return {r[region_key]: float(r[value_key]) for r in rows}


@pytest.mark.mutates_pipeline
def test_dashboard_asset_shows_governed_numbers_and_refreshes_after_sensor(superset):
    instance = dg.DagsterInstance.ephemeral()
    result = _materialize(instance, [DASHBOARD_KEY])
    mat = result.asset_materializations_for_node("bi__akko_banking_fraud_dashboard")[0]
    assert mat.metadata["dashboard_url"].value.endswith("/superset/dashboard/akko-banking-fraud/")
    assert mat.metadata["chart_count"].value == 12

    before = _chart_rate_by_region(superset)
    expected = _governed_rate_by_region()
    assert before.keys() == expected.keys()
    assert all(abs(before[k] - expected[k]) < 1e-9 for k in expected)
    top = _chart_data(superset, _chart_ids(superset)[_title("top_flagged_transactions")])[0]["data"]
    assert top and {r["card_pan"] for r in top} == {MASK}

    # New rows land and the graph refreshes; the chart still serves its cached answer...
    seed_transactions(load_settings().pg_dsn, 3000, 99, load_settings().as_of, mode="append")
    from akko_assets.definitions import defs

    keys = [k for k in defs.resolve_job_def("banking_fraud_demo").asset_layer.asset_graph.get_all_asset_keys()
            if k.path[0] not in ("postgres", "ml")]
    refresh = _materialize(instance, keys)
    after = _governed_rate_by_region()
    assert after != expected
    assert _chart_rate_by_region(superset) == before

    # ...until the run-status sensor sees the successful run and invalidates the cache.
    run = instance.get_run_by_id(refresh.run_id)
    success_event = next(e for e in refresh.all_events if e.event_type_value == "PIPELINE_SUCCESS")
    context = dg.build_run_status_sensor_context(
        sensor_name=superset_cache_invalidation_sensor.name, dagster_instance=instance,
        dagster_run=run, dagster_event=success_event,
    )
    superset_cache_invalidation_sensor(context)
    refreshed = _chart_rate_by_region(superset)
    assert all(abs(refreshed[k] - after[k]) < 1e-9 for k in after)


def test_dashboard_asset_fails_clearly_when_superset_is_down(pipeline_run, monkeypatch):
    monkeypatch.setenv("AKKO_SUPERSET_URL", f"http://127.0.0.1:{_free_port()}")
    from akko_assets.definitions import defs

    result = defs.resolve_job_def("banking_fraud_demo").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), asset_selection=[DASHBOARD_KEY], raise_on_error=False)
    assert not result.success
    message = next(e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "Superset is not reachable at http://127.0.0.1:" in message and "run akko superset up" in message
