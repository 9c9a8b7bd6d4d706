"""AKKO_REPLICATOR=spark swaps the engine behind the same asset `iceberg/banking/transactions`."""

from __future__ import annotations

import dagster as dg
import pytest

from akko_assets.lakehouse import spark as spark_mod

pytestmark = pytest.mark.spark


def _setup_missing() -> str | None:
    try:
        spark_mod.check_setup()
    except spark_mod.SparkSetupError as exc:
        return str(exc)
    return None


@pytest.mark.skipif(_setup_missing() is not None, reason=f"{_setup_missing()} (run bash scripts/setup_spark.sh)")
def test_replicate_asset_runs_on_spark_when_configured(akko_env, monkeypatch):
    monkeypatch.setenv("AKKO_REPLICATOR", "spark")
    from akko_assets.definitions import defs
    from akko_assets.ingest.seed import seed_transactions
    from akko_assets.resources.engine import connect_curated
    from akko_assets.settings import load_settings

    settings = load_settings()
    seed_transactions(settings.pg_dsn, 2000, 5, settings.as_of)
    result = defs.resolve_job_def("banking_fraud_demo").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        asset_selection=[dg.AssetKey(["iceberg", "banking", "transactions"])],
        raise_on_error=False,
    )
    assert result.success
    metadata = result.asset_materializations_for_node("iceberg__banking__transactions")[0].metadata
    assert metadata["replicator"].value == "spark" and metadata["rows_inserted"].value == 2000
    assert connect_curated(settings).sql("SELECT count(*) FROM banking.transactions").fetchone()[0] == 2000
