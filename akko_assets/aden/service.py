"""ADEN's front door: question -> catalog -> SQL -> validation -> cost gate -> governed execution -> answer.

`ask()` is the Python API; `ask_command()` is what `akko ask` runs. Identity problems (unknown
user, bad token, a table the role may not read) raise AccessDenied; questions ADEN will not
answer come back as an Answer with refused=True and the reason.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from akko_assets.aden.errors import Refusal
from akko_assets.aden.format import answer_sentence, llm_answer_sentence
from akko_assets.aden.llm import LLMError, ask_llm_for_sql, llm_configured
from akko_assets.aden.parser import (
    MAX_QUESTION_CHARS,
    Plan,
    dimension_alias,
    known_summary,
    normalize,
    parse,
    to_sql,
)
from akko_assets.aden.validate import MAX_ROWS, cost_gate, validate_sql
from akko_assets.catalog.semantic import catalog_path, load_catalog
from akko_assets.governance import (
    AccessDenied,
    GovernedExecutor,
    PolicyEngine,
    QueryError,
    engine_for_profile,
)
from akko_assets.governance.cli import _json_value, resolve_identity
from akko_assets.governance.identity import Identity
from akko_assets.observability import tracing
from akko_assets.settings import Settings, load_settings

EXIT_OK, EXIT_DENIED, EXIT_REFUSED = 0, 2, 3
NO_CATALOG = "no tables in the catalog: materialize catalog/semantic_catalog"

# Requests to change data or reach past the catalog; checked before any parsing.
WRITE_INTENT = re.compile(
    r"^\s*(?:please\s+|can\s+you\s+|could\s+you\s+|would\s+you\s+|i\s+want\s+to\s+|let'?s\s+|go\s+ahead\s+and\s+)?"
    r"(?:delete|remove|drop|update|insert|truncate|alter|create|modify|change|set|reset|erase|wipe|purge|"
    r"overwrite|mark|unflag|flag|rename|grant|revoke|block|unblock|approve|add|edit|replace|restore|clear|close|"
    r"suspend|reactivate|cancel|refund|write|upload|import|load)\b"
    r"|\b(?:delete|drop|truncate|insert\s+into|alter\s+table|create\s+table|wipe|erase|purge)\b"
)
INJECTION = re.compile(
    r";|--|/\*|\*/|\x00|\bunion\b[\s\S]*\bselect\b|\bselect\b[\s\S]*\bfrom\b|\bor\s+'?\d+'?\s*=\s*'?\d+|'\s*or\s*'|"
    r"\b(?:information_schema|pg_catalog|duckdb_\w+|sqlite_master|xp_cmdshell|read_csv\w*|read_parquet|"
    r"iceberg_scan|getenv|attach|pragma|exec(?:ute)?\s*\(|sleep\s*\(|benchmark\s*\(|load_file|into\s+outfile)\b|"
    r"\$\{|\{\{|<script",
    re.IGNORECASE,
)


@dataclass
class Answer:
    answer: str
    sql: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    refused: bool = False
    reason: str | None = None
    engine: str = "semantic"  # which path wrote the SQL: semantic | llm
    dimensions: list[str] = field(default_factory=list)  # output columns that are dimensions (for charts)
    scanned_rows_estimate: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"answer": self.answer, "sql": self.sql, "columns": self.columns,
                "rows": [[_json_value(v) for v in row] for row in self.rows]}


def _refused(reason: str) -> Answer:
    return Answer(answer=f"I can't answer that: {reason}", refused=True, reason=reason)


def screen_question(question: str) -> str:
    """The normalised question, or Refusal for empty, over-long, data-changing or injection-like input."""
    if question is None or not str(question).strip():
        raise Refusal("the question is empty: ask e.g. 'Which regions saw a fraud rate above 5 % last week?'")
    if len(question) > MAX_QUESTION_CHARS:
        raise Refusal(f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}")
    text = normalize(question)
    if INJECTION.search(text):
        raise Refusal("the question contains SQL or control syntax; ask in plain words (ADEN writes the SQL)")
    if WRITE_INTENT.search(text.lower()):
        raise Refusal("ADEN only reads data: it cannot delete, change or create anything")
    return text


class Aden:
    """One ADEN instance per settings: catalog, policies and a warm engine are reused across questions."""

    def __init__(self, settings: Settings | None = None,
                 connect: Callable[[], duckdb.DuckDBPyConnection] | None = None,
                 policy: PolicyEngine | None = None) -> None:
        from akko_assets.aden.engine import warm_connect

        self.settings = settings or load_settings()
        self.connect = connect or warm_connect(self.settings)
        # Answers run on the profile's engine (Trino as the asker in k8s); ADEN writes DuckDB SQL,
        # which the executor transpiles. An injected `connect` (tests, notebooks) is used as is.
        engine = self.connect if connect is not None else engine_for_profile(self.settings.profile, self.connect)
        self.executor = GovernedExecutor(engine, policy or PolicyEngine())

    def catalog(self) -> dict[str, Any] | None:
        return load_catalog(catalog_path(self.settings))

    def ask(self, question: str, identity: Identity) -> Answer:
        """Answer as `identity`, inside an `aden.ask` span (child of the current context)."""
        attributes = {"aden.question": question, "akko.role": ",".join(sorted(identity.roles))}
        with tracing.span("aden.ask", tracing.SERVICE_ADEN, attributes=attributes) as span:
            answer = self._ask(question, identity)
            span.set_attributes({"aden.decision": "refused" if answer.refused else "answered", "aden.sql": answer.sql or "",
                                 "aden.rows": len(answer.rows), "aden.engine": answer.engine,
                                 "aden.refusal_reason": answer.reason or ""})
            return answer

    def _ask(self, question: str, identity: Identity) -> Answer:
        try:
            text = screen_question(question)
            catalog = self.catalog()
            if not catalog or not catalog.get("tables"):
                raise Refusal(NO_CATALOG)
            if llm_configured():
                answer = self._ask_llm(text, catalog, identity)
                if answer is not None:
                    return answer
            plan = parse(text, catalog, self.settings.as_of)
            return self._run(to_sql(plan, catalog["semantic_model"]), catalog, identity, plan)
        except Refusal as exc:
            return _refused(exc.reason)

    def _run(self, sql: str, catalog: Mapping[str, Any], identity: Identity, plan: Plan | None) -> Answer:
        checked, tables = validate_sql(sql, catalog, MAX_ROWS)
        estimate = cost_gate(checked, self.connect, catalog, tables)
        try:
            result = self.executor.execute(checked, identity, limit=MAX_ROWS)
        except QueryError as exc:
            raise Refusal(f"the query failed: {exc}") from None
        model = catalog["semantic_model"]
        if plan is not None:
            sentence = answer_sentence(plan, model, result.columns, result.rows)
            dims = [dimension_alias(d, model) for d in plan.dimensions]
        else:
            sentence = llm_answer_sentence(result.columns, result.rows)
            dims = []
        return Answer(answer=sentence, sql=checked, columns=result.columns, rows=result.rows,
                      engine="semantic" if plan is not None else "llm", dimensions=dims,
                      scanned_rows_estimate=estimate)

    def _ask_llm(self, question: str, catalog: Mapping[str, Any], identity: Identity) -> Answer | None:
        try:
            sql = ask_llm_for_sql(question, catalog, self.settings.as_of)
            return self._run(sql, catalog, identity, None)
        except (LLMError, Refusal, QueryError):
            return None  # fall back to the semantic parser


# Per thread: the Rego engine inside PolicyEngine is "unsendable" (regorus panics when another
# thread touches or drops it), and Streamlit runs each script run on its own thread.
_LOCAL = threading.local()


def _instance(settings: Settings) -> Aden:
    key = f"{settings.home}|{settings.iceberg_catalog_uri}|{settings.as_of}"
    instances: dict[str, Aden] = getattr(_LOCAL, "instances", None) or {}
    _LOCAL.instances = instances
    if key not in instances:
        instances[key] = Aden(settings)
    return instances[key]


ADEN_AUDIENCES = ("aden", "trino")


def ask(question: str, user: str | None = None, token: str | None = None, traceparent: str | None = None) -> Answer:
    """Answer `question` as the user (realm name) or the bearer of `token`; AccessDenied when neither is valid.

    `traceparent` (W3C; default: the TRACEPARENT variable) joins the question's span to a caller's trace."""
    # Tokens issued for ADEN's own client, or for Trino (where ADEN's queries run as the same user).
    identity = resolve_identity(user, token, audience=ADEN_AUDIENCES)
    with tracing.attached(traceparent):
        return _instance(load_settings()).ask(question, identity)


def ask_command(question: str, user: str | None = None, token: str | None = None, as_json: bool = False,
                traceparent: str | None = None) -> int:
    """`akko ask`: 0 answered, 3 refused (reason on stderr), 2 access denied."""
    try:
        answer = ask(question, user=user, token=token, traceparent=traceparent)
    except AccessDenied as exc:
        print(f"denied: {exc}", file=sys.stderr)
        return EXIT_DENIED
    if answer.refused:
        print(f"refused: {answer.reason}", file=sys.stderr)
        return EXIT_REFUSED
    if as_json:
        print(json.dumps(answer.to_json()))
        return EXIT_OK
    from akko_assets.governance.cli import format_table
    from akko_assets.governance.executor import QueryResult

    print(answer.answer)
    print()
    print(answer.sql)
    print()
    print(format_table(QueryResult(columns=answer.columns, rows=answer.rows)))
    return EXIT_OK


__all__ = ["NO_CATALOG", "Aden", "Answer", "ask", "ask_command", "known_summary", "screen_question"]
