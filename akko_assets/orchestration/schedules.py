"""Retraining: a weekly schedule, not declarative automation.

Why a schedule: retraining is the one costly, model-changing step, and the refresh path must
never trigger it (new rows re-score with the production model). An eager automation condition
on `ml/fraud_model` would retrain on every refresh; `on_cron` would need the automation-condition
sensor plus a condition set on the ML asset itself. A schedule states the policy in one visible
place ("Mondays 03:00 UTC, after the previous ISO week closed"), can be switched on or off in the
UI, and leaves the promotion decision (only when not worse) to the ML asset.
"""

from __future__ import annotations

import dagster as dg

from akko_assets.orchestration.jobs import retrain_fraud_model

retrain_weekly = dg.ScheduleDefinition(
    name="retrain_weekly",
    job=retrain_fraud_model,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    description="Retrain ml/fraud_model every Monday 03:00 UTC on the marts as they stand, then re-score downstream.",
    default_status=dg.DefaultScheduleStatus.STOPPED,  # opt-in: a laptop demo should not retrain unasked
)
