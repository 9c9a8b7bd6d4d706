"""Tracing (OpenTelemetry) for the platform: `tracing` (providers, exporters, context), `runs`
(Dagster run and step spans), `sensors` (run spans), `tree` (`akko trace`).

`SENSORS` is loaded on first access: `tracing` must import without Dagster (the Airflow DAG
uses it from its own virtualenv).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "SENSORS":
        from akko_assets.observability.sensors import SENSORS

        return SENSORS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SENSORS"]
