"""`python -m akko_assets.orchestration`: write $AKKO_HOME/dagster/dagster.yaml and print that folder.

Used as `DAGSTER_HOME=$(python -m akko_assets.orchestration) dagster dev -w workspace.yaml` (`make ui`).
"""

from akko_assets.orchestration.instance import prepare_dagster_home
from akko_assets.settings import load_settings

print(prepare_dagster_home(load_settings()))
