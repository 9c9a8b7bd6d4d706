"""Asset keys and groups for dbt nodes: models are `<folder>/<name>`, the Iceberg source keeps the
replication asset's key (set in the source's meta.dagster.asset_key) so lineage is one graph."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings


def _folder(props: Mapping[str, Any]) -> str:
    fqn = props.get("fqn", [])
    return fqn[1] if len(fqn) > 2 else "marts"


class AkkoDbtTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            return dg.AssetKey([_folder(dbt_resource_props), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return _folder(dbt_resource_props) if dbt_resource_props["resource_type"] == "model" else None

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return ["team:analytics-engineering"]
