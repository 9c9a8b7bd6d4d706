"""Jobs the sensor, the schedule and Airflow launch.

Selections use Dagster's selection strings, which resolve lazily by key when the Definitions
load: a key that is not (yet) defined selects nothing instead of failing the code location, so
these jobs keep working while stages are added and never import the stages they select.
"""

from __future__ import annotations

import dagster as dg

TRANSACTIONS_KEY = "iceberg/banking/transactions"
FRAUD_MODEL_KEY = "ml/fraud_model"

# Tag every run launched from here carries, so its runs are easy to filter in the UI.
PIPELINE_TAG = "akko/pipeline"

# Everything fed by the Iceberg table except the model: replicate only new rows (the asset's
# default config is incremental), rebuild the marts, re-score and re-enrich with the model
# already in production, refresh the semantic catalog and the dashboard.
# (Two selections subtracted rather than one `and not` string: the latter drags in a beta
# `include_sources` warning on every load.)
INCREMENTAL_REFRESH_SELECTION = dg.AssetSelection.from_string(f'key:"{TRANSACTIONS_KEY}"+') - dg.AssetSelection.from_string(
    f'key:"{FRAUD_MODEL_KEY}"'
)
# The model and what depends on it (scores, catalog, dashboard), trained on the current marts.
RETRAIN_SELECTION = dg.AssetSelection.from_string(f'key:"{FRAUD_MODEL_KEY}"+')

incremental_refresh = dg.define_asset_job(
    "incremental_refresh",
    selection=INCREMENTAL_REFRESH_SELECTION,
    description=(
        "Refresh after new source rows: incremental Iceberg MERGE, dbt marts, re-score and re-enrich "
        "with the production model (no retraining), catalog and dashboard."
    ),
    tags={PIPELINE_TAG: "incremental_refresh"},
    # One process: the steps are short, and a subprocess per step would spend more time importing
    # dagster, dbt and pyiceberg than working. Pools are still claimed per step.
    executor_def=dg.in_process_executor,
)

retrain_fraud_model = dg.define_asset_job(
    "retrain_fraud_model",
    selection=RETRAIN_SELECTION,
    description="Retrain the Isolation Forest on the current marts, then re-score, re-enrich and refresh the dashboard.",
    tags={PIPELINE_TAG: "retrain_fraud_model"},
    executor_def=dg.in_process_executor,
)
