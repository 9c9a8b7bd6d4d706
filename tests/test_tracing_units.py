"""Tracing pieces on their own: the JSON-lines exporter, W3C context, literal stripping, Dagster run
and step spans, engine query spans, the span tree `akko trace` prints, and the CLI's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from typer.testing import CliRunner

from akko_assets.observability import tracing
from akko_assets.observability.runs import emit_run_span, run_span_ids
from akko_assets.observability.tree import (
    TraceNotFound,
    find_run_trace,
    load_spans,
    render_tree,
    trace_command,
)

REPO = Path(__file__).resolve().parents[1]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private AKKO_HOME, file export (no OTLP variables), fresh providers before and after."""
    monkeypatch.setenv("AKKO_HOME", str(tmp_path))
    for name in list(os.environ):
        if name.startswith("OTEL_") or name == tracing.TRACEPARENT_ENV:
            monkeypatch.delenv(name)
    tracing.reset()
    yield tmp_path
    tracing.reset()


def spans_in(home: Path) -> list[dict]:
    path = home / "traces" / "spans.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- exporter and context ------------------------------------------------------------------------


def test_file_exporter_writes_one_json_line_per_span_with_parent_links(home: Path) -> None:
    with tracing.span("outer", tracing.SERVICE_ADEN, attributes={"aden.question": "q?", "skip": None, "n": 3}):
        with tracing.span("inner", tracing.SERVICE_ENGINE):
            pass
    inner, outer = spans_in(home)  # written as each span ends: the child first
    assert set(outer) == {"trace_id", "span_id", "parent_span_id", "name", "service.name", "kind", "start_ns",
                          "end_ns", "attributes", "status"}
    assert (outer["name"], outer["service.name"], outer["parent_span_id"]) == ("outer", "aden", None)
    assert (inner["name"], inner["service.name"]) == ("inner", "engine")
    assert inner["trace_id"] == outer["trace_id"] and len(outer["trace_id"]) == 32
    assert inner["parent_span_id"] == outer["span_id"] and len(outer["span_id"]) == 16
    assert outer["attributes"] == {"aden.question": "q?", "n": 3}
    assert outer["start_ns"] <= inner["start_ns"] <= inner["end_ns"] <= outer["end_ns"]


def test_an_exception_marks_the_span_error_and_still_propagates(home: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with tracing.span("fails", tracing.SERVICE_DAGSTER):
            raise RuntimeError("boom")
    (record,) = spans_in(home)
    assert record["status"] == {"code": "ERROR", "description": "RuntimeError: boom"}


def test_processes_appending_at_once_leave_whole_lines(home: Path) -> None:
    """Step subprocesses, sensors and Airflow tasks share one file: no torn or lost lines."""
    code = ("from akko_assets.observability import tracing\n"
            "for i in range(150):\n"
            "    with tracing.span('s%d' % i, 'dagster', attributes={'pad': 'x' * 2000}): pass\n")
    env = {**os.environ, "AKKO_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env) for _ in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    records = spans_in(home)  # json.loads of every line: a torn line would raise here
    assert len(records) == 450 and len({r["span_id"] for r in records}) == 450


def test_traceparent_becomes_the_parent_and_bad_ones_are_rejected(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = tracing.context_from_traceparent(TRACEPARENT)
    with tracing.span("child", tracing.SERVICE_ADEN, context=ctx):
        assert tracing.current_traceparent().split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    (record,) = spans_in(home)
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and record["parent_span_id"] == "00f067aa0ba902b7"

    for bad in ("", "garbage", "00-" + "0" * 32 + "-00f067aa0ba902b7-01", "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"):
        assert tracing.context_from_traceparent(bad) is None, bad
    with pytest.raises(ValueError, match="not W3C trace context"):
        tracing.check_traceparent("12345")

    # TRACEPARENT in the environment is the parent when nothing is active...
    monkeypatch.setenv("TRACEPARENT", TRACEPARENT)
    with tracing.attached(None), tracing.span("from-env", tracing.SERVICE_ADEN):
        pass
    # ...but an active span wins over it.
    with tracing.span("active", tracing.SERVICE_DAGSTER) as active:
        with tracing.attached(None):
            with tracing.span("nested", tracing.SERVICE_ADEN):
                pass
    by_name = {r["name"]: r for r in spans_in(home)}
    assert by_name["from-env"]["parent_span_id"] == "00f067aa0ba902b7"
    assert by_name["nested"]["parent_span_id"] == format(active.get_span_context().span_id, "016x")


def test_disabled_sdk_writes_nothing(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    with tracing.span("quiet", tracing.SERVICE_DAGSTER):
        pass
    assert not (home / "traces" / "spans.jsonl").exists()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM marts.fct_transactions WHERE customer_name = 'Alice O''Hara' AND amount > 250.5",
         "SELECT * FROM marts.fct_transactions WHERE customer_name = ? AND amount > ?"),
        ("SELECT region FROM t WHERE card_pan IN ('4111111111111111', '5500000000000004') LIMIT 10",
         "SELECT region FROM t WHERE card_pan IN (?, ?) LIMIT ?"),
        ("SELECT count(*) FROM t WHERE ts >= DATE '2026-11-16' AND ts < CAST('2026-11-23' AS DATE)",
         "SELECT COUNT(*) FROM t WHERE ts >= CAST(? AS DATE) AND ts < CAST(? AS DATE)"),
        ("select scored.fraud_score > $threshold as f from scored", "SELECT scored.fraud_score > $threshold AS f FROM scored"),
        # Not parseable: the regex fallback still removes strings and numbers.
        ("SELEC name FROM t WHERE pan = '4111111111111111' AND x = 42", "SELEC name FROM t WHERE pan = ? AND x = ?"),
    ],
)
def test_literals_are_replaced_by_placeholders(sql: str, expected: str) -> None:
    assert tracing.strip_literals(sql) == expected


# -- Dagster runs and steps ---------------------------------------------------------------------


def test_step_spans_parent_to_the_run_span_which_parents_to_the_traceparent(home: Path) -> None:
    from akko_assets.errors import fails_clearly
    from akko_assets.settings import SettingsError

    @dg.asset
    @fails_clearly
    def first(context):  # (no annotation: this module has postponed annotations, Dagster wants the class)
        with tracing.query_span("SELECT 1 WHERE x = 'secret'", role="pipeline") as record:
            record(1)
        return 1

    @dg.asset(deps=[first])
    @fails_clearly
    def second(context):
        raise SettingsError("AKKO_ROWS must be positive")
        yield  # a generator body, as dbt assets are

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([first, second], instance=instance, tags={"traceparent": TRACEPARENT}, raise_on_error=False)
    assert not result.success
    trace_id = emit_run_span(instance, result.dagster_run)
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"

    records = spans_in(home)
    by_name = {r["name"]: r for r in records}
    run = by_name["dagster.run __ephemeral_asset_job__"]
    ids = run_span_ids(result.run_id, {"traceparent": TRACEPARENT})
    assert run["span_id"] == format(ids.span_id, "016x") and run["parent_span_id"] == "00f067aa0ba902b7"
    assert run["status"]["code"] == "ERROR" and run["attributes"]["dagster.run_status"] == "FAILURE"
    assert run["attributes"]["dagster.steps_failed"] == 1
    for step in ("first", "second"):
        span = by_name[f"dagster.step {step}"]
        assert span["parent_span_id"] == run["span_id"] and span["trace_id"] == trace_id
        assert span["attributes"]["dagster.run_id"] == result.run_id and span["attributes"]["dagster.step_key"] == step
        assert span["attributes"]["dagster.asset_keys"] == [step]
    assert by_name["dagster.step second"]["status"]["code"] == "ERROR"
    assert "AKKO_ROWS must be positive" in by_name["dagster.step second"]["status"]["description"]
    query = by_name["engine.query"]
    assert query["parent_span_id"] == by_name["dagster.step first"]["span_id"]
    assert query["attributes"]["db.query.text"] == "SELECT ? WHERE x = ?" and query["service.name"] == "engine"
    # Run times come from Dagster's stats: the run span covers its steps.
    assert run["start_ns"] <= by_name["dagster.step first"]["start_ns"] and by_name["dagster.step second"]["end_ns"] <= run["end_ns"]


def test_a_run_without_traceparent_gets_a_trace_of_its_own_derived_from_its_id() -> None:
    a = run_span_ids("run-a", {})
    assert a == run_span_ids("run-a", {}) and a.parent is None
    b = run_span_ids("run-b", {"traceparent": "not-a-traceparent"})
    assert b.trace_id != a.trace_id and b.span_id != a.span_id


def test_governed_query_span_has_role_rows_and_no_literals(home: Path, tmp_path: Path) -> None:
    from akko_assets.governance import (
        AccessDenied,
        GovernedExecutor,
        Identity,
        PolicyEngine,
    )
    from akko_assets.governance.sample import build_sample_curated

    path = tmp_path / "curated.duckdb"
    con = duckdb.connect(str(path))
    build_sample_curated(con, rows=100, customers=20)
    con.close()
    executor = GovernedExecutor(lambda: duckdb.connect(str(path), read_only=True), PolicyEngine())
    result = executor.execute("SELECT region, amount FROM marts.fct_transactions WHERE amount > 10.25 AND region <> 'MEA'",
                              Identity("erin", ["akko-viewer"]))
    with pytest.raises(AccessDenied):
        executor.execute("DROP TABLE marts.fct_transactions", Identity("erin", ["akko-viewer"]))
    ok, denied = spans_in(home)
    assert ok["name"] == "engine.query" and ok["kind"] == "CLIENT"
    assert ok["attributes"]["db.query.text"] == "SELECT region, amount FROM marts.fct_transactions WHERE amount > ? AND region <> ?"
    assert ok["attributes"]["akko.role"] == "akko-viewer"
    assert ok["attributes"]["db.response.returned_rows"] == len(result.rows) > 0
    assert ok["attributes"]["akko.duration_ms"] >= 0
    assert denied["status"]["code"] == "ERROR" and "AccessDenied" in denied["status"]["description"]


# -- the tree -----------------------------------------------------------------------------------


def _record(name: str, span_id: str, parent: str | None, start: float, end: float, service: str = "dagster",
            trace_id: str = "a" * 32, **attributes) -> dict:
    return {"trace_id": trace_id, "span_id": span_id, "parent_span_id": parent, "name": name, "service.name": service,
            "kind": "INTERNAL", "start_ns": int(start * 1e9), "end_ns": int(end * 1e9), "attributes": attributes,
            "status": {"code": "UNSET", "description": None}}


def test_tree_nests_children_in_start_order_with_durations(tmp_path: Path) -> None:
    spans = [
        _record("airflow.task launch_dagster_run", "0000000000000001", None, 100.0, 100.4, "airflow-compat"),
        _record("dagster.run banking_fraud_demo", "0000000000000002", "0000000000000001", 101.0, 131.0,
                **{"dagster.run_id": "r1", "dagster.run_status": "SUCCESS"}),
        _record("dagster.step enrich", "0000000000000004", "0000000000000002", 120.0, 125.0, **{"dagster.run_id": "r1"}),
        _record("dagster.step seed", "0000000000000003", "0000000000000002", 102.0, 104.5, **{"dagster.run_id": "r1"}),
        _record("engine.query", "0000000000000005", "0000000000000004", 121.0, 121.0042, "engine",
                **{"db.response.returned_rows": 3000}),
        _record("aden.ask", "0000000000000006", "0000000000000001", 140.0, 140.3, "aden", **{"aden.decision": "answered"}),
        _record("dagster.step lost", "0000000000000007", "00000000000000ff", 126.0, 127.0, **{"dagster.run_id": "r1"}),
        _record("other trace", "0000000000000008", None, 100.0, 200.0, trace_id="b" * 32, **{"dagster.run_id": "r0"}),
    ]
    path = tmp_path / "spans.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in spans + spans[:2]) + '{"torn": \n')
    loaded = load_spans(path)
    assert len(loaded) == len(spans)  # duplicates counted once, a torn line skipped
    assert find_run_trace(loaded, "r1") == ("a" * 32, "r1")
    text = render_tree(loaded, "a" * 32, "r1")
    lines = text.splitlines()
    assert lines[0] == f"trace {'a' * 32}  run r1"
    assert lines[1].startswith("7 spans, 40.30 s, services: aden, airflow-compat, dagster, engine")
    keys = ("launch_dagster_run", "dagster.run", "step seed", "step enrich", "engine.query", "aden.ask")
    positions = [next(i for i, line in enumerate(lines) if key in line) for key in keys]
    assert positions == sorted(positions), text  # depth-first, children by start time
    row = {key: next(line for line in lines if key in line) for key in ("dagster.run", "step seed", "engine.query", "aden.ask", "step lost")}
    assert "    1.00s    30.00s  dagster                 dagster.run banking_fraud_demo  run_status=SUCCESS" in row["dagster.run"]
    assert "      dagster.step seed" in row["step seed"] and "2.50s" in row["step seed"]
    assert "        engine.query  returned_rows=3000" in row["engine.query"] and "4.2ms" in row["engine.query"]
    assert "  aden.ask  decision=answered" in row["aden.ask"]
    assert "(parent not recorded)" in row["step lost"]
    assert "other trace" not in text


def test_last_picks_the_latest_run_and_missing_data_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    with pytest.raises(TraceNotFound, match="no spans recorded yet"):
        trace_command("last", path)
    path.write_text(json.dumps(_record("x", "0000000000000001", None, 1, 2)) + "\n")
    with pytest.raises(TraceNotFound, match="no Dagster run spans"):
        trace_command("last", path)
    spans = [
        _record("dagster.step a", "0000000000000001", "0000000000000009", 1, 2, trace_id="a" * 32, **{"dagster.run_id": "run-old"}),
        _record("dagster.step b", "0000000000000002", "0000000000000008", 5, 6, trace_id="b" * 32, **{"dagster.run_id": "run-new"}),
    ]
    path.write_text("".join(json.dumps(s) + "\n" for s in spans))
    text = trace_command("last", path)
    assert text.startswith(f"trace {'b' * 32}  run run-new")
    assert "the run span is not recorded yet" in text
    assert trace_command("run-o", path).startswith(f"trace {'a' * 32}")
    with pytest.raises(TraceNotFound, match="matches 2 runs"):
        trace_command("run-", path)
    with pytest.raises(TraceNotFound, match="no spans recorded for run 'nope'"):
        trace_command("nope", path)


def test_cli_trace_and_traceparent_errors_are_clear(home: Path) -> None:
    from akko_assets.cli import app

    runner = CliRunner()
    missing = runner.invoke(app, ["trace"])
    assert missing.exit_code == 1 and "no spans recorded yet" in missing.output
    bad = runner.invoke(app, ["ask", "How many transactions?", "--user", "carol", "--traceparent", "abc"])
    assert bad.exit_code == 2 and "not W3C trace context" in bad.output
    bad_sql = runner.invoke(app, ["sql", "SELECT 1", "--user", "carol"], env={"TRACEPARENT": "xyz"})
    assert bad_sql.exit_code == 2 and "not W3C trace context" in bad_sql.output


def test_a_server_reads_the_context_from_request_headers(home: Path) -> None:
    """What an HTTP server does: extract from the headers object, whatever case the client sent."""
    from email.message import Message

    headers = Message()  # http.server's request headers type
    headers["Traceparent"] = TRACEPARENT
    with tracing.span("served", tracing.SERVICE_ADEN, context=tracing.context_from_headers(headers)):
        pass
    (record,) = spans_in(home)
    assert (record["trace_id"], record["parent_span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def test_aden_span_records_question_decision_and_parent(home: Path, tmp_path: Path) -> None:
    """Refusals need no curated data: the span still says what was asked and what ADEN decided."""
    from akko_assets.aden.service import NO_CATALOG, Aden
    from akko_assets.governance import Identity, PolicyEngine
    from akko_assets.settings import load_settings

    aden = Aden(load_settings(), connect=duckdb.connect, policy=PolicyEngine())
    carol = Identity("carol", ["akko-analyst"])
    with tracing.attached(TRACEPARENT):
        refused = aden.ask("Please delete all flagged transactions", carol)
        no_catalog = aden.ask("How many transactions were flagged last week?", carol)
    assert refused.refused and no_catalog.reason == NO_CATALOG
    first, second = spans_in(home)
    for record in (first, second):
        assert record["name"] == "aden.ask" and record["service.name"] == "aden"
        assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and record["parent_span_id"] == "00f067aa0ba902b7"
        assert record["attributes"]["aden.decision"] == "refused" and record["attributes"]["akko.role"] == "akko-analyst"
        assert record["attributes"]["aden.rows"] == 0 and record["attributes"]["aden.sql"] == ""
    assert first["attributes"]["aden.question"] == "Please delete all flagged transactions"
    assert "only reads data" in first["attributes"]["aden.refusal_reason"]
    assert second["attributes"]["aden.refusal_reason"] == NO_CATALOG


def test_otlp_endpoint_follows_the_standard_variables(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracing.otlp_endpoint() is None  # -> the JSON-lines file
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://tempo:4318/")
    assert tracing.otlp_endpoint() == "http://tempo:4318/v1/traces"  # the SDK appends the signal path
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/custom/traces")
    assert tracing.otlp_endpoint() == "http://collector:4318/custom/traces"  # taken as is


def test_a_full_file_rotates_and_the_tree_still_reads_both_generations(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    path = tmp_path / "traces" / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(tracing.JsonLinesSpanExporter(path, max_bytes=2000)))
    tracer = provider.get_tracer("test")
    for i in range(12):
        with tracer.start_as_current_span(f"s{i}", attributes={"dagster.run_id": "r1", "pad": "x" * 150}):
            pass
    rotated = tracing.rotated_path(path)
    assert rotated.exists()  # (the write that rotates lands in the rotated file; the next one starts a new file)
    assert all(p.stat().st_size < 2000 + 1000 for p in (path, rotated) if p.exists())
    kept = load_spans(path)
    assert len(kept) >= 4 and all(s["name"].startswith("s") for s in kept)  # older generations beyond .1 are dropped
