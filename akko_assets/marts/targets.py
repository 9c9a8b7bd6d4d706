"""Where each `dbt build` writes its artifacts, and how the next one starts warm.

dagster-dbt gives every invocation a target folder of its own (manifest, run results, logs: ~2 MB).
By default those pile up in dbt/target/ of the checkout, one per run, forever, and every run parses
the project from scratch because the partial-parse file there was made by `make setup` with another
profile (dbt's profile includes the AKKO_HOME-dependent DuckDB path). So, per AKKO_HOME:

- invocation folders live in $AKKO_HOME/dbt/runs/ and only the newest KEEP_RUNS are kept;
- the partial-parse file of the last successful build is kept in $AKKO_HOME/dbt/ and seeded into
  the next invocation. dbt checks it (project files, profile, variables) and reparses if stale, so a
  wrong one costs a parse, never a wrong build.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from akko_assets.settings import Settings

PARTIAL_PARSE = "partial_parse.msgpack"
KEEP_RUNS = 5


def dbt_state_dir(settings: Settings) -> Path:
    return settings.home / "dbt"


def invocation_target(settings: Settings, run_id: str) -> Path:
    """A new target folder for one dbt invocation, seeded with the last partial-parse file."""
    runs = dbt_state_dir(settings) / "runs"
    target = runs / f"{run_id[:8]}-{uuid.uuid4().hex[:6]}"
    target.mkdir(parents=True)
    kept = dbt_state_dir(settings) / PARTIAL_PARSE
    if kept.exists():
        shutil.copyfile(kept, target / PARTIAL_PARSE)
    return target


def keep_warm_state(settings: Settings, target: Path) -> None:
    """After a successful build: keep its partial-parse file, drop all but the newest run folders."""
    produced = target / PARTIAL_PARSE
    if produced.exists():
        kept = dbt_state_dir(settings) / PARTIAL_PARSE
        tmp = kept.with_name(f".{PARTIAL_PARSE}.{os.getpid()}")
        shutil.copyfile(produced, tmp)
        os.replace(tmp, kept)  # readers see the old file or the new one, never half of one
    runs = sorted((p for p in target.parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[KEEP_RUNS:]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
