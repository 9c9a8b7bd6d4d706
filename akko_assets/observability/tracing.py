"""OpenTelemetry tracing for every AKKO component, configured from the standard OTEL_* variables.

* `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set: OTLP/HTTP (Tempo on
  k8s, any collector; headers from `OTEL_EXPORTER_OTLP_HEADERS`), batched and flushed at exit.
* otherwise: one JSON object per span appended to `$AKKO_HOME/traces/spans.jsonl`, written as each
  span ends, so short-lived processes (Dagster step subprocesses, CLI calls, Airflow tasks) never
  lose spans. `akko trace` reads that file.
* `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`: no spans at all.

One TracerProvider per component (`service.name`), several may live in one process (an ADEN
question runs engine queries). Context crosses process boundaries only as W3C trace context
(`traceparent` run tags, HTTP headers, the TRACEPARENT variable or `--traceparent`).

This module imports only the standard library and OpenTelemetry: the Airflow DAG, which runs in
its own virtualenv without the project installed, loads it by file path.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

SERVICE_AIRFLOW = "airflow-compat"
SERVICE_DAGSTER = "dagster"
SERVICE_ENGINE = "engine"
SERVICE_ADEN = "aden"
SERVICE_SUPERSET = "superset-provisioner"

TRACEPARENT_TAG = "traceparent"  # Dagster run tag carrying the W3C context of whoever launched the run
TRACEPARENT_ENV = "TRACEPARENT"
SPANS_FILE = Path("traces") / "spans.jsonl"
_TRACEPARENT_RE = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
# Same default as akko_assets.settings (not imported: this module must load without the project).
_DEFAULT_HOME = Path(__file__).resolve().parents[2] / ".akko"


# -- ids ----------------------------------------------------------------------------------------

_FORCED_IDS: contextvars.ContextVar[tuple[int | None, int | None] | None] = contextvars.ContextVar("akko_forced_ids", default=None)


class _ChosenIdGenerator(IdGenerator):
    """Random ids, except inside `_forced_ids`: lets us emit a span whose id was decided elsewhere
    (the Dagster run span, whose id every step process derives from the run id)."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        forced = _FORCED_IDS.get()
        return forced[1] if forced and forced[1] else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _FORCED_IDS.get()
        return forced[0] if forced and forced[0] else self._random.generate_trace_id()


@contextlib.contextmanager
def _forced_ids(trace_id: int | None, span_id: int) -> Iterator[None]:
    token = _FORCED_IDS.set((trace_id, span_id))
    try:
        yield
    finally:
        _FORCED_IDS.reset(token)


def derived_id(text: str, bits: int) -> int:
    """A stable non-zero id from text (W3C forbids all-zero ids)."""
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[: bits // 8], "big")
    return value or 1


# -- the JSON-lines exporter ------------------------------------------------------------------


def akko_home() -> Path:
    return Path(os.environ.get("AKKO_HOME", "").strip() or _DEFAULT_HOME).expanduser().resolve()


def spans_path(home: Path | None = None) -> Path:
    return (home or akko_home()) / SPANS_FILE


def span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    parent = span.parent
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(parent.span_id, "016x") if parent is not None and parent.is_valid else None,
        "name": span.name,
        "service.name": (span.resource.attributes.get("service.name") if span.resource else None),
        "kind": span.kind.name,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "attributes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (span.attributes or {}).items()},
        "status": {"code": span.status.status_code.name, "description": span.status.description},
    }


MAX_FILE_BYTES = 64 * 1024 * 1024  # then spans.jsonl moves to spans.jsonl.1 (one generation kept)


def rotated_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


class JsonLinesSpanExporter(SpanExporter):
    """Appends one JSON line per span. Several processes append to the same file (step
    subprocesses, the daemon's sensors, Airflow tasks): each export opens the file, writes under
    an exclusive lock and closes it, so lines never interleave and a rotation is safe."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(json.dumps(span_record(s), default=str) + "\n" for s in spans)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                if fh.tell() > self.max_bytes and self.path.exists() and os.path.samefile(fh.fileno(), self.path):
                    self.path.replace(rotated_path(self.path))  # later writers open a new file
                fh.write(text)
                fh.flush()
        except OSError:
            return SpanExportResult.FAILURE  # tracing never breaks the work it observes
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# -- providers --------------------------------------------------------------------------------

_LOCK = threading.Lock()
_PROVIDERS: dict[str, TracerProvider] = {}
_ID_GENERATOR = _ChosenIdGenerator()
_ATEXIT = False


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def enabled() -> bool:
    return not _truthy("OTEL_SDK_DISABLED") and os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() != "none"


def otlp_endpoint() -> str | None:
    """Where OTLP spans go (as the exporter resolves it), or None for the JSON-lines file."""
    specific = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if specific:
        return specific
    general = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{general.rstrip('/')}/v1/traces" if general else None


def _processor():
    if otlp_endpoint():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )

        # The exporter reads endpoint, headers, timeout and compression from OTEL_* itself.
        return BatchSpanProcessor(OTLPSpanExporter())
    return SimpleSpanProcessor(JsonLinesSpanExporter(spans_path()))


def provider(service: str) -> TracerProvider:
    global _ATEXIT
    with _LOCK:
        found = _PROVIDERS.get(service)
        if found is None:
            # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES; our service.name wins.
            found = TracerProvider(resource=Resource.create({"service.name": service}), id_generator=_ID_GENERATOR)
            found.add_span_processor(_processor())
            _PROVIDERS[service] = found
            if not _ATEXIT:
                atexit.register(flush)
                _ATEXIT = True
        return found


def tracer(service: str) -> trace.Tracer:
    if not enabled():
        return trace.NoOpTracer()
    return provider(service).get_tracer("akko_assets")


def flush(timeout_millis: int = 5000) -> None:
    """Export everything pending (OTLP batches) before a short-lived process exits."""
    with _LOCK:
        providers = list(_PROVIDERS.values())
    for p in providers:
        p.force_flush(timeout_millis)


def reset() -> None:
    """Flush and forget every provider; the next span reads OTEL_* / AKKO_HOME again (tests)."""
    with _LOCK:
        providers = list(_PROVIDERS.values())
        _PROVIDERS.clear()
    for p in providers:
        p.shutdown()


# -- context ----------------------------------------------------------------------------------


def parse_traceparent(value: str | None) -> tuple[int, int] | None:
    """(trace_id, span_id) of a valid W3C traceparent, else None."""
    match = _TRACEPARENT_RE.match((value or "").strip().lower())
    if not match or match.group(1) == "0" * 32 or match.group(2) == "0" * 16 or value.startswith("ff"):
        return None
    return int(match.group(1), 16), int(match.group(2), 16)


def context_from_traceparent(traceparent: str | None = None) -> otel_context.Context | None:
    """The parent context carried by a traceparent (or the TRACEPARENT variable); None if neither is valid."""
    value = traceparent or os.environ.get(TRACEPARENT_ENV)
    if not parse_traceparent(value):
        return None
    return propagate.extract({"traceparent": value.strip()})


def context_from_headers(headers: Any) -> otel_context.Context:
    """The caller's context from HTTP request headers, for a server. Pass the headers object
    itself (http.server's Message, Starlette's Headers): they look names up case-insensitively,
    while `dict(headers)` would keep `Traceparent` as sent and the W3C propagator miss it."""
    return propagate.extract(headers)


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span (to put into a run tag, header or env), or None."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def check_traceparent(value: str | None) -> str | None:
    """`value` if it is a valid W3C traceparent (or empty: None); ValueError naming the format otherwise."""
    if not value or not value.strip():
        return None
    if not parse_traceparent(value):
        raise ValueError(f"traceparent {value!r} is not W3C trace context: expected 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>")
    return value.strip()


@contextlib.contextmanager
def attached(traceparent: str | None) -> Iterator[None]:
    """Make a remote parent current for the block: the `traceparent` given (ValueError when it is
    malformed), else TRACEPARENT when no span is active; a no-op without either."""
    if check_traceparent(traceparent):
        ctx = context_from_traceparent(traceparent)
    else:
        ctx = None if trace.get_current_span().get_span_context().is_valid else context_from_traceparent(None)
    if ctx is None:
        yield
        return
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def span(
    name: str,
    service: str,
    *,
    context: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[trace.Span]:
    """A current span of `service`; an exception marks it ERROR (with the message) and propagates."""
    with tracer(service).start_as_current_span(
        name, context=context, kind=kind, attributes=_clean(attributes), record_exception=True, set_status_on_exception=True
    ) as current:
        yield current


def emit_span(
    name: str,
    service: str,
    *,
    span_id: int,
    trace_id: int,
    parent: SpanContext | None,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record a finished span with a chosen id and times (the Dagster run span, emitted when the
    run ends, which its steps in other processes already named as their parent)."""
    ctx = trace.set_span_in_context(trace.NonRecordingSpan(parent)) if parent is not None and parent.is_valid else otel_context.Context()
    with _forced_ids(trace_id, span_id):
        started = tracer(service).start_span(name, context=ctx, attributes=_clean(attributes), start_time=start_ns)
    started.set_status(Status(StatusCode.ERROR, error) if error else Status(StatusCode.OK))
    started.end(end_time=end_ns)


def remote_parent(trace_id: int, span_id: int) -> SpanContext:
    return SpanContext(trace_id=trace_id, span_id=span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenTelemetry accepts str/bool/int/float (and lists of them); drop None, stringify the rest."""
    out: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if value is None:
            continue
        if isinstance(value, (str, bool, int, float)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = [v if isinstance(v, (str, bool, int, float)) else str(v) for v in value]
        else:
            out[key] = str(value)
    return out


# -- SQL --------------------------------------------------------------------------------------

_STRING_RE = re.compile(r"'(?:[^']|'')*'")
_NUMBER_RE = re.compile(r"(?<![\w$.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")


def strip_literals(sql: str, dialect: str = "duckdb") -> str:
    """The statement with every literal replaced by `?`, so spans never carry customer values.

    sqlglot when available (it knows where literals are); a regex over quoted strings and
    numbers otherwise, or when the statement does not parse."""
    try:
        import sqlglot
        from sqlglot import exp

        tree = sqlglot.parse_one(sql, read=dialect)
        for literal in list(tree.find_all(exp.Literal)):
            literal.replace(exp.Placeholder())
        return tree.sql(dialect=dialect)
    except Exception:  # ImportError, parse errors: fall back to the conservative regex
        return " ".join(_NUMBER_RE.sub("?", _STRING_RE.sub("?", sql)).split())


@contextlib.contextmanager
def query_span(sql: str, *, role: str, engine: str = "duckdb") -> Iterator[Any]:
    """Span of one query the engine executes: the statement without literals, the role it ran
    as, rows and duration. Yields `record(rows)` to call once the rows are known."""
    import time

    attributes = {"db.system.name": engine, "db.query.text": strip_literals(sql), "akko.role": role}
    with span("engine.query", SERVICE_ENGINE, attributes=attributes, kind=SpanKind.CLIENT) as current:
        started = time.perf_counter()

        def record(rows: int) -> None:
            current.set_attribute("db.response.returned_rows", int(rows))

        try:
            yield record
        finally:
            current.set_attribute("akko.duration_ms", round((time.perf_counter() - started) * 1000, 3))
