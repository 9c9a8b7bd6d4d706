"""Scale benchmark: the whole local asset graph (all but the dashboard) at several sizes, with
seconds and peak memory per asset, written as a table into bench/README.md.

    python bench/bench_scale.py [--sizes 100000 1000000] [--readme bench/README.md] [--json out.json]

Each size runs in its own subprocess (fresh PostgreSQL database `akko_scale`, fresh AKKO_HOME), so
its peak RSS is its own. Inside it, one `execute_in_process` of `banking_fraud_demo` runs every
asset in order; a sampler thread records the resident memory of the process AND its children (dbt
runs as a subprocess) every 50 ms, and each step's peak is the largest sample between its
STEP_START and its end in the Dagster event log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BENCH_DIR = Path(__file__).resolve().parent
AS_OF = "2026-11-30"
DB_NAME = "akko_scale"
BEGIN, END = "<!-- bench-scale:begin -->", "<!-- bench-scale:end -->"
TARGET_SECONDS_1M = 8 * 60
TARGET_RSS_MB = 3 * 1024


class TreeSampler(threading.Thread):
    """Samples RSS of this process plus all its descendants (the dbt subprocess) until stopped."""

    def __init__(self, interval: float = 0.05):
        super().__init__(daemon=True)
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []  # (unix time, self MB, tree MB)
        self._done = threading.Event()

    def _tree_mb(self) -> tuple[float, float]:
        import psutil

        own = self.proc.memory_info().rss
        total = own
        for child in self.proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return own / 2**20, total / 2**20

    def run(self) -> None:
        while not self._done.is_set():
            own, tree = self._tree_mb()
            self.samples.append((time.time(), own, tree))
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()

    def peak(self, start: float, end: float) -> tuple[float, float]:
        # Widened by one interval so a step shorter than the interval still has a sample.
        lo, hi = start - self.interval, end + self.interval
        window = [(o, t) for ts, o, t in self.samples if lo <= ts <= hi] or [(0.0, 0.0)]
        return max(o for o, _ in window), max(t for _, t in window)


def _step_windows(instance, run_id: str) -> list[dict]:
    """(step, start, end, status) from the event log, in execution order."""
    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            steps[event.step_key] = {"step": event.step_key, "start": entry.timestamp, "end": entry.timestamp,
                                     "status": "running"}
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED") and event.step_key in steps:
            steps[event.step_key].update(end=entry.timestamp, status=kind.removeprefix("STEP_").lower())
    return sorted(steps.values(), key=lambda s: s["start"])


def run_one(rows: int, out: Path) -> None:
    """One size, in this (fresh) process."""
    import psycopg

    server = os.environ.get("AKKO_BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
    home = Path(tempfile.mkdtemp(prefix=f"akko-scale-{rows}-"))
    os.environ.update(AKKO_HOME=str(home), AKKO_PG_DSN=f"{server}/{DB_NAME}", AKKO_AS_OF=AS_OF,
                      AKKO_ROWS=str(rows), AKKO_SEED="42")
    for var in ("AKKO_ICEBERG_WAREHOUSE", "AKKO_ICEBERG_CATALOG_URI", "AKKO_S3_ENDPOINT", "AKKO_PROFILE"):
        os.environ.pop(var, None)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")

    sampler = TreeSampler()
    sampler.start()
    import_start = time.time()
    import dagster as dg

    from akko_assets.definitions import defs

    job = defs.resolve_job_def("banking_fraud_demo")
    keys = [k for k in job.asset_layer.asset_graph.get_all_asset_keys() if k.path[0] != "bi"]
    instance = dg.DagsterInstance.ephemeral()
    run_start = time.time()
    result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False)
    run_end = time.time()
    sampler.stop()

    steps = []
    for step in _step_windows(instance, result.run_id):
        own, tree = sampler.peak(step["start"], step["end"])
        steps.append({**step, "seconds": round(step["end"] - step["start"], 2), "peak_rss_mb": round(own),
                      "peak_tree_rss_mb": round(tree)})
    failures = [e.event_specific_data.error.message.strip().splitlines()[0]
                for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    with psycopg.connect(f"{server}/{DB_NAME}") as conn:
        pg_rows = conn.execute("SELECT count(*) FROM akko.raw_transactions").fetchone()[0]
    from akko_assets.resources.engine import connect_curated

    con = connect_curated()
    counts = {t: con.sql(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("banking.transactions", "marts.fct_transactions", "marts.enriched_transactions")}
    _, tree_all = sampler.peak(run_start, run_end)
    figures = {
        "rows": rows,
        "success": result.success,
        "failures": failures,
        "import_seconds": round(run_start - import_start, 2),
        "run_seconds": round(run_end - run_start, 2),
        # VmHWM of this process; children's max is the largest single child (dbt) ever seen.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "peak_tree_rss_mb": round(tree_all),
        "steps": steps,
        "counts": {"postgres akko.raw_transactions": pg_rows, **counts},
    }
    out.write_text(json.dumps(figures, indent=2))
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    shutil.rmtree(home, ignore_errors=True)


def _label(step: str) -> str:
    return step.replace("__", "/")


def markdown(results: list[dict]) -> str:
    sizes = [r["rows"] for r in results]
    small, big = (results[0], results[-1]) if len(results) > 1 else (None, None)
    lines = [
        f"Measured {dt.date.today().isoformat()} on {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"`python bench/bench_scale.py --sizes {' '.join(map(str, sizes))}` (all assets but the dashboard, one "
        "in-process run per size, fresh database and AKKO_HOME). Peak RSS is the Python process plus its "
        "children (dbt), sampled every 50 ms; PostgreSQL's own server memory is not included.",
        "",
    ]
    header = "| step | " + " | ".join(f"{r['rows']:,} rows: s | peak MB | rows/s" for r in results)
    if small:
        header += " | time ratio | RSS ratio"
    lines.append(header + " |")
    lines.append("|---" * (1 + 3 * len(results) + (2 if small else 0)) + "|")
    names = [s["step"] for s in results[-1]["steps"]]
    for name in names:
        cells = []
        per = []
        for r in results:
            step = next((s for s in r["steps"] if s["step"] == name), None)
            per.append(step)
            if step is None:
                cells += ["–"] * 3
            else:
                rate = f"{r['rows'] / step['seconds']:,.0f}" if step["seconds"] > 0 else "–"
                cells += [f"{step['seconds']:.1f}", f"{step['peak_tree_rss_mb']:,}", rate]
        if small:
            a, b = per[0], per[-1]
            if a and b and a["seconds"] > 0 and a["peak_tree_rss_mb"] > 0:
                cells += [f"{b['seconds'] / a['seconds']:.1f}×", f"{b['peak_tree_rss_mb'] / a['peak_tree_rss_mb']:.1f}×"]
            else:
                cells += ["–", "–"]
        lines.append(f"| `{_label(name)}` | " + " | ".join(cells) + " |")
    total = []
    for r in results:
        total += [f"**{r['run_seconds']:.1f}**", f"**{r['peak_tree_rss_mb']:,}**", f"{r['rows'] / r['run_seconds']:,.0f}"]
    if small:
        total += [f"**{big['run_seconds'] / small['run_seconds']:.1f}×**",
                  f"**{big['peak_tree_rss_mb'] / small['peak_tree_rss_mb']:.1f}×**"]
    lines.append("| **whole run** | " + " | ".join(total) + " |")
    lines.append("")
    for r in results:
        verdict = []
        if r["rows"] >= 1_000_000:
            verdict.append(f"time {'≤' if r['run_seconds'] <= TARGET_SECONDS_1M else '>'} 8 min target")
        verdict.append(f"peak {'≤' if r['peak_tree_rss_mb'] <= TARGET_RSS_MB else '>'} 3 GiB target")
        counts = ", ".join(f"{k} {v:,}" for k, v in r["counts"].items())
        status = "succeeded" if r["success"] else "FAILED: " + "; ".join(r["failures"])
        lines.append(f"- {r['rows']:,} rows: run {status} in {r['run_seconds']:.1f} s (+{r['import_seconds']:.1f} s "
                     f"import), process VmHWM {r['peak_rss_mb']:,} MB, largest child {r['peak_child_rss_mb']:,} MB; "
                     f"{'; '.join(verdict)}. Rows: {counts}.")
    return "\n".join(lines)


def write_readme(readme: Path, table: str) -> None:
    text = readme.read_text() if readme.exists() else ""
    block = f"{BEGIN}\n{table}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = (text.rstrip() + "\n\n" if text else "# Benchmarks\n\n") + "## Scale (`make bench-scale`)\n\n" + block + "\n"
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--readme", type=Path, default=BENCH_DIR / "README.md")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--run-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_one:
        run_one(args.run_one, args.out)
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.sizes:
            out = Path(tmp) / f"{rows}.json"
            print(f"== {rows:,} rows", flush=True)
            log = Path(tmp) / f"{rows}.log"  # Dagster's event log lines, shown only on failure
            with log.open("w") as err:
                proc = subprocess.run([sys.executable, __file__, "--run-one", str(rows), "--out", str(out)], stderr=err)
            if proc.returncode != 0:
                sys.exit(f"the {rows}-row run failed:\n" + "\n".join(log.read_text().splitlines()[-30:]))
            figures = json.loads(out.read_text())
            for s in figures["steps"]:
                print(f"   {s['step']:45} {s['seconds']:8.1f} s  {s['peak_tree_rss_mb']:6} MB  {s['status']}")
            print(f"   whole run {figures['run_seconds']} s, peak {figures['peak_tree_rss_mb']} MB, "
                  f"success={figures['success']}", flush=True)
            results.append(figures)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    table = markdown(results)
    write_readme(args.readme, table)
    print("\n" + table)


if __name__ == "__main__":
    main()
