"""The dbt project handle, shared by the dbt assets and the resources."""

from __future__ import annotations

from functools import cache

from dagster_dbt import DbtProject

from akko_assets.settings import DBT_PROJECT_DIR


@cache
def dbt_project() -> DbtProject:
    # The manifest is prepared by `make setup` (dbt parse), not on every import.
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
