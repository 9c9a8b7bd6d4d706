"""Governance benchmark: added latency of the governed rewrite, and policy evaluation per table.

    python bench/bench_governance.py [--rows 20000] [--repeat 300] [--json]

Builds the four governed tables in a temporary DuckDB file (akko_assets.governance.sample), then
measures, per role:
  * rewrite p50/p95 (parse + checks + policy lookups from cache + SQL generation), warm;
  * cold rewrite (first query of a process: DESCRIBE + regorus evaluation);
  * regorus policy evaluation per table (allow + batched masks + row filters, cache bypassed);
  * end-to-end governed execute vs the same query run directly, to show the engine-side cost;
  * the k8s profile's rewrite, written in Trino's dialect (column lists answered by DuckDB here,
    since no Trino runs on this machine): the added cost of transpiling.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from akko_assets.governance import GovernedExecutor, Identity, PolicyEngine
from akko_assets.governance.executor import DuckDBEngine
from akko_assets.governance.sample import build_sample_curated

TABLES = ("banking.transactions", "marts.fct_transactions", "marts.enriched_transactions", "marts.dim_customers")
ROLES = ("akko-admin", "akko-analyst", "akko-user", "akko-viewer")
QUERIES = {
    "simple": "SELECT customer_id, card_pan, amount FROM marts.fct_transactions WHERE amount > 100",
    "join_cte": (
        "WITH recent AS (SELECT * FROM marts.enriched_transactions WHERE fraud_score > 0.8) "
        "SELECT d.customer_name, count(*) AS n, sum(r.amount) AS total FROM recent r "
        "JOIN marts.dim_customers d USING (customer_id) GROUP BY ALL ORDER BY n DESC LIMIT 10"
    ),
    "nested_union": (
        "SELECT region, count(*) FROM (SELECT region FROM banking.transactions UNION ALL "
        "SELECT region FROM fct_transactions WHERE customer_id IN (SELECT customer_id FROM dim_customers)) "
        "GROUP BY region"
    ),
}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    args = parser.parse_args()

    report: dict = {"rows": args.rows, "repeat": args.repeat, "rewrite_ms": {}, "cold_rewrite_ms": {},
                    "policy_eval_ms": {}, "execute_ms": {}, "trino_rewrite_ms": {}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "curated.duckdb"
        con = duckdb.connect(str(path))
        build_sample_curated(con, rows=args.rows, customers=max(20, args.rows // 50))
        con.close()
        connect = lambda: duckdb.connect(str(path), read_only=True)

        for name, sql in QUERIES.items():
            for role in ROLES:
                identity = Identity("bench", [role])
                executor = GovernedExecutor(connect, PolicyEngine())
                start = time.perf_counter()
                executor.rewrite(sql, identity)
                report["cold_rewrite_ms"][f"{name}/{role}"] = (time.perf_counter() - start) * 1000
                samples = timed(lambda: executor.rewrite(sql, identity), args.repeat)
                report["rewrite_ms"][f"{name}/{role}"] = {"p50": statistics.median(samples), "p95": percentile(samples, 0.95)}

        # The same rewrite, written for Trino (what the k8s profile sends).
        trino_dialect = DuckDBEngine(connect)
        trino_dialect.name, trino_dialect.dialect = "trino", "trino"
        for name, sql in QUERIES.items():
            identity = Identity("bench", ["akko-user"])
            duck = GovernedExecutor(connect, PolicyEngine())
            trino = GovernedExecutor(trino_dialect, PolicyEngine())
            duck.rewrite(sql, identity), trino.rewrite(sql, identity)
            d_samples = timed(lambda: duck.rewrite(sql, identity), args.repeat)
            t_samples = timed(lambda: trino.rewrite(sql, identity), args.repeat)
            report["trino_rewrite_ms"][name] = {"duckdb_p50": statistics.median(d_samples), "trino_p50": statistics.median(t_samples)}

        engine = PolicyEngine()
        probe = duckdb.connect(str(path), read_only=True)
        for table in TABLES:
            columns = [(r[0], r[1]) for r in probe.execute(f"DESCRIBE {table}").fetchall()]
            schema, name = table.split(".")
            for role in ROLES:
                identity = Identity("bench", [role])

                def evaluate() -> None:
                    engine._cache.clear()  # measure regorus, not the cache
                    engine.table_policy(identity, schema, name, columns)

                samples = timed(evaluate, max(50, args.repeat // 3))
                report["policy_eval_ms"][f"{table}/{role}"] = {"p50": statistics.median(samples), "p95": percentile(samples, 0.95)}
        probe.close()

        executor = GovernedExecutor(connect, PolicyEngine())
        raw = connect()
        for name, sql in QUERIES.items():
            identity = Identity("bench", ["akko-admin"])  # same rows as the direct run
            executor.execute(sql, identity)
            governed = timed(lambda: executor.execute(sql, identity), 30)
            direct = timed(lambda: raw.execute(sql.replace("FROM fct_transactions", "FROM marts.fct_transactions")
                                               .replace("FROM dim_customers", "FROM marts.dim_customers")).fetchall(), 30)
            report["execute_ms"][name] = {"governed_p50": statistics.median(governed), "direct_p50": statistics.median(direct)}
        raw.close()

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"governance benchmark: {args.rows} rows, {args.repeat} repetitions (times in ms)")
    print("\nrewrite latency, warm (parse + checks + cached policy + SQL generation)")
    for key, v in report["rewrite_ms"].items():
        print(f"  {key:<28} p50 {v['p50']:6.3f}  p95 {v['p95']:6.3f}   cold {report['cold_rewrite_ms'][key]:7.2f}")
    print("\npolicy evaluation per table (regorus: allow + batchColumnMasks + rowFilters, uncached)")
    for key, v in report["policy_eval_ms"].items():
        print(f"  {key:<40} p50 {v['p50']:6.3f}  p95 {v['p95']:6.3f}")
    print("\nend-to-end as akko-admin (same rows): governed execute (connect + rewrite + run) vs direct run on an open connection")
    for key, v in report["execute_ms"].items():
        print(f"  {key:<14} governed p50 {v['governed_p50']:7.2f}   direct p50 {v['direct_p50']:7.2f}")
    print("\nk8s profile: the rewrite written in Trino's dialect vs DuckDB's, as akko-user")
    for key, v in report["trino_rewrite_ms"].items():
        print(f"  {key:<14} duckdb p50 {v['duckdb_p50']:6.3f}   trino p50 {v['trino_p50']:6.3f}   "
              f"ratio {v['trino_p50'] / v['duckdb_p50']:4.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
