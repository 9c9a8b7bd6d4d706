"""dbt invocation folders live under AKKO_HOME, are pruned, and hand their partial-parse file on."""

from __future__ import annotations

import os
import time

from akko_assets.marts.targets import KEEP_RUNS, PARTIAL_PARSE, dbt_state_dir, invocation_target, keep_warm_state
from akko_assets.settings import load_settings


def test_runs_are_pruned_and_partial_parse_is_handed_on(akko_env) -> None:
    settings = load_settings()
    first = invocation_target(settings, "first000-aaaa")
    assert not (first / PARTIAL_PARSE).exists()  # nothing kept yet: dagster-dbt seeds from dbt/target
    (first / PARTIAL_PARSE).write_bytes(b"parse-1")
    os.utime(first, (time.time() - 200, time.time() - 200))
    keep_warm_state(settings, first)
    assert (dbt_state_dir(settings) / PARTIAL_PARSE).read_bytes() == b"parse-1"

    targets = [first]
    for i in range(KEEP_RUNS + 3):
        target = invocation_target(settings, f"run{i:05d}-bbbb")
        assert (target / PARTIAL_PARSE).read_bytes() == f"parse-{i + 1}".encode()  # seeded from the last build
        (target / PARTIAL_PARSE).write_bytes(f"parse-{i + 2}".encode())
        past = time.time() - 100 + i  # distinct, increasing modification times
        os.utime(target, (past, past))
        keep_warm_state(settings, target)
        targets.append(target)
    remaining = sorted(p.name for p in (dbt_state_dir(settings) / "runs").iterdir())
    assert len(remaining) == KEEP_RUNS
    assert targets[-1].name in remaining and first.name not in remaining


def test_pipeline_run_keeps_dbt_state_under_akko_home(pipeline_run, pipeline_env) -> None:
    settings = load_settings()
    assert settings.home.as_posix() == pipeline_env["AKKO_HOME"]
    assert (dbt_state_dir(settings) / PARTIAL_PARSE).stat().st_size > 0
    runs = list((dbt_state_dir(settings) / "runs").iterdir())
    assert 1 <= len(runs) <= KEEP_RUNS
    assert all((run / "run_results.json").exists() for run in runs)
