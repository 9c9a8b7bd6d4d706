"""Append live-looking transactions to akko.raw_transactions (thin entry to the project's generator).

Runs with the core virtualenv's python (it imports akko_assets), e.g. from an Airflow BashOperator:
    .venv/bin/python airflow/scripts/generate_transactions.py --rows 1000
Settings (AKKO_PG_DSN, AKKO_SEED, AKKO_AS_OF, ...) come from the environment like everywhere else.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Runnable by path from any folder: the repository root holds the akko_assets package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from akko_assets.ingest.seed import seed_transactions  # noqa: E402
from akko_assets.resources.postgres import SourceUnavailable  # noqa: E402
from akko_assets.settings import SettingsError, load_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows to append (default 1000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time-based, so each call differs)")
    parser.add_argument("--mode", choices=("append", "replace"), default="append")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    try:
        settings = load_settings()
        seed = args.seed if args.seed is not None else int(time.time())
        result = seed_transactions(settings.pg_dsn, args.rows, seed, settings.as_of, args.mode)
    except (SourceUnavailable, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.mode}: wrote {result.rows_written} rows ({result.fraud_rows} fraud), table has {result.rows_total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
