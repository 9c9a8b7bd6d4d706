"""dbt models as Dagster assets (dagster-dbt); dbt tests become asset checks."""

import time

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from akko_assets.errors import fails_clearly
from akko_assets.lakehouse.replicate import EmptySource
from akko_assets.marts.project import dbt_project
from akko_assets.marts.publish import publish_marts
from akko_assets.marts.targets import invocation_target, keep_warm_state
from akko_assets.marts.translator import AkkoDbtTranslator
from akko_assets.resources import AkkoSettingsResource, IcebergResource, dbt_environment_applied


class EmptyUpstream(EmptySource):
    """The lakehouse table dbt reads has no rows yet."""


@dbt_assets(
    manifest=dbt_project().manifest_path,
    dagster_dbt_translator=AkkoDbtTranslator(),
    pool="iceberg_writer",
)
@fails_clearly
def akko_dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: AkkoSettingsResource, iceberg: IcebergResource
):
    s = settings.get()
    catalog = iceberg.catalog()
    from pyiceberg.exceptions import NoSuchTableError

    try:
        source = catalog.load_table("banking.transactions")
    except NoSuchTableError:
        source = None
    if source is None or source.current_snapshot() is None or int(source.current_snapshot().summary.get("total-records", 0)) == 0:
        raise EmptyUpstream("banking.transactions is empty or missing: materialize iceberg/banking/transactions first")
    started = time.perf_counter()
    target = invocation_target(s, context.run_id)
    with dbt_environment_applied(s) as duckdb_path:
        invocation = dbt.cli(["build"], context=context, target_path=target)  # the subprocess starts here
    yield from invocation.stream()
    keep_warm_state(s, target)
    built = time.perf_counter()
    context.log.info(f"dbt build took {built - started:.2f} s")
    if s.profile == "local":
        counts = publish_marts(duckdb_path, catalog)
        context.log.info(f"published to Iceberg in {time.perf_counter() - built:.2f} s: {counts}")
