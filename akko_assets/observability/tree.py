"""`akko trace [RUN_ID|last]`: a run's whole trace as an indented span tree, from the JSON-lines file.

The trace is the one holding the run's spans (every span of a Dagster run carries
`dagster.run_id`), so the tree also shows the Airflow task that launched the run and any ADEN
questions asked with the same context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class TraceNotFound(Exception):
    """No spans file, or nothing recorded for the run asked about."""


@dataclass
class SpanNode:
    record: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)

    @property
    def start(self) -> int:
        return int(self.record.get("start_ns") or 0)

    @property
    def end(self) -> int:
        return int(self.record.get("end_ns") or self.start)


def load_spans(path: Path) -> list[dict[str, Any]]:
    """Every span in the file, one per span id (a span written twice, e.g. a run span recorded by
    the sensor and by its launcher, counts once); unreadable lines are skipped."""
    from akko_assets.observability.tracing import rotated_path

    if not path.exists() and not rotated_path(path).exists():
        raise TraceNotFound(
            f"no spans recorded yet: {path} does not exist. Run the pipeline (`akko demo`, or a run in the "
            "Dagster UI) with OTEL_EXPORTER_OTLP_ENDPOINT unset; with it set, spans go to that OTLP endpoint instead"
        )
    spans: dict[tuple[str, str], dict[str, Any]] = {}
    for part in (rotated_path(path), path):  # the previous generation first, then the current file
        if not part.exists():
            continue
        with part.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash mid-write
                if isinstance(record, dict) and record.get("trace_id") and record.get("span_id"):
                    spans[(record["trace_id"], record["span_id"])] = record
    return list(spans.values())


def _run_id(record: dict[str, Any]) -> str | None:
    return (record.get("attributes") or {}).get("dagster.run_id")


def find_run_trace(spans: list[dict[str, Any]], run: str) -> tuple[str, str]:
    """(trace_id, run_id) for a run id (or a unique prefix of one), or `last`: the run seen last."""
    with_run = [s for s in spans if _run_id(s)]
    if not with_run:
        raise TraceNotFound("no Dagster run spans recorded yet: materialize something (`akko demo`) first")
    if run == "last":
        latest = max(with_run, key=lambda s: (int(s.get("end_ns") or 0), int(s.get("start_ns") or 0)))
        return latest["trace_id"], _run_id(latest)
    matches = {_run_id(s) for s in with_run if _run_id(s).startswith(run)}
    if not matches:
        raise TraceNotFound(f"no spans recorded for run {run!r}: check the run id (`akko trace last` shows the latest run)")
    if len(matches) > 1:
        raise TraceNotFound(f"run id prefix {run!r} matches {len(matches)} runs: give more characters")
    run_id = matches.pop()
    mine = [s for s in with_run if _run_id(s) == run_id]
    return mine[0]["trace_id"], run_id


def build_tree(spans: list[dict[str, Any]]) -> list[SpanNode]:
    """Roots of the trace, children ordered by start; a span whose parent was never recorded is a root."""
    nodes = {s["span_id"]: SpanNode(s) for s in spans}
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = node.record.get("parent_span_id")
        (nodes[parent].children if parent in nodes else roots).append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: n.start)
    return sorted(roots, key=lambda n: n.start)


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:8.2f}s" if ns >= 10_000_000 else f"{ns / 1e6:7.1f}ms"


_DETAIL_KEYS = ("db.response.returned_rows", "aden.decision", "aden.rows", "dagster.run_status", "akko.role")


def _detail(record: dict[str, Any]) -> str:
    attributes = record.get("attributes") or {}
    parts = [f"{k.split('.')[-1]}={attributes[k]}" for k in _DETAIL_KEYS if k in attributes]
    status = (record.get("status") or {}).get("code")
    if status == "ERROR":
        parts.append("ERROR " + ((record.get("status") or {}).get("description") or ""))
    return ("  " + " ".join(parts)).rstrip() if parts else ""


def render_tree(spans: list[dict[str, Any]], trace_id: str, run_id: str | None = None) -> str:
    """The trace as text: start offset, duration, service, indented name and key attributes."""
    mine = [s for s in spans if s["trace_id"] == trace_id]
    roots = build_tree(mine)
    begin = min(n.start for n in roots)
    end = max(int(s.get("end_ns") or 0) for s in mine)
    ids = {s["span_id"] for s in mine}
    services = sorted({s.get("service.name") or "?" for s in mine})
    head = f"trace {trace_id}" + (f"  run {run_id}" if run_id else "")
    lines = [head, f"{len(mine)} spans, {(end - begin) / 1e9:.2f} s, services: {', '.join(services)}",
             f"{'start':>9} {'duration':>9}  {'service':<21} span"]
    if run_id and not any(_run_id(s) == run_id and s["name"].startswith("dagster.run") for s in mine):
        lines.insert(2, "(the run span is not recorded yet: the run is still going, or the trace_run_* sensors are off)")

    def walk(node: SpanNode, depth: int) -> None:
        record = node.record
        orphan = depth == 0 and record.get("parent_span_id") and record["parent_span_id"] not in ids
        name = record["name"] + ("  (parent not recorded)" if orphan else "")
        lines.append(f"{_seconds(node.start - begin):>9} {_seconds(node.end - node.start):>9}  "
                     f"{(record.get('service.name') or '?'):<21} {'  ' * depth}{name}{_detail(record)}")
        for child in node.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


def trace_command(run: str = "last", path: Path | None = None) -> str:
    """Text for `akko trace RUN`; raises TraceNotFound with the reason and what to do."""
    from akko_assets.observability.tracing import spans_path

    spans = load_spans(path or spans_path())
    trace_id, run_id = find_run_trace(spans, run)
    return render_tree(spans, trace_id, run_id)
