"""ADEN benchmark: answer latency (p50/p95) and execution accuracy over the development set.

    python bench/bench_aden.py [--user alice] [--repeat 3] [--json]

Runs against the curated layer of the current environment (AKKO_HOME, AKKO_PG_DSN, AKKO_AS_OF,
after `make demo` or a pipeline run); builds the semantic catalog first if it is missing. The dev
set's gold answers assume AKKO_AS_OF=2026-11-30 (accuracy is meaningless for other dates; the
latencies are not). Reports the cold first answer (imports, Iceberg extensions, policy compile)
separately from the warm per-question latency of the semantic path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEV_SET = ROOT / "tests" / "data" / "aden_dev_set.yaml"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="alice")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the dev set for the warm figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    from akko_assets.aden import ask
    from akko_assets.aden.evaluate import evaluate, load_dev_set
    from akko_assets.catalog.semantic import (
        build_semantic_catalog,
        catalog_path,
        write_catalog,
    )
    from akko_assets.resources.engine import connect_curated
    from akko_assets.settings import load_settings

    settings = load_settings()
    if not catalog_path(settings).exists():
        con = connect_curated(settings)
        try:
            write_catalog(build_semantic_catalog(con, as_of=settings.as_of), catalog_path(settings))
        finally:
            con.close()
    items = load_dev_set(DEV_SET)
    first = time.perf_counter()
    ask(items[0]["q"], user=args.user)
    cold = time.perf_counter() - first
    imports = first - start

    latencies: list[float] = []
    results = []
    for _ in range(max(1, args.repeat)):
        results = evaluate(items, lambda q: ask(q, user=args.user), connect_curated)
        latencies += [r.seconds for r in results]
    correct = sum(r.correct for r in results)
    report = {
        "questions": len(items),
        "passes": max(1, args.repeat),
        "user": args.user,
        "accuracy": round(correct / len(items), 4),
        "correct": correct,
        "import_s": round(imports, 3),
        "cold_first_answer_s": round(cold, 3),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "as_of": settings.as_of.isoformat(),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"ADEN over {report['questions']} dev questions x {report['passes']} passes as {args.user} "
              f"(AKKO_AS_OF={report['as_of']})")
        print(f"  accuracy          {report['correct']}/{report['questions']} = {report['accuracy']:.1%}"
              "  (gold answers are unfiltered: meaningful for roles without row filters)")
        print(f"  imports           {report['import_s']:.2f} s")
        print(f"  cold first answer {report['cold_first_answer_s']:.2f} s")
        print(f"  warm p50 / p95    {report['p50_ms']:.0f} ms / {report['p95_ms']:.0f} ms (max {report['max_ms']:.0f} ms)")
        for r in results:
            if not r.correct:
                print(f"  wrong: {r.question}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
