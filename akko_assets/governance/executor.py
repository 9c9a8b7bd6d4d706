"""The one governed read path: parse, check, rewrite every base table into a masked subquery, run.

Every read (CLI SQL, ADEN, the dashboard's service identity, notebooks) goes through
`GovernedExecutor.execute`. The query is parsed with sqlglot (DuckDB dialect) and must be exactly
one read-only SELECT. Each base-table reference, wherever it sits (CTE bodies, subqueries, joins,
set operations, lateral joins), is replaced by

    (SELECT <col | mask AS col>, ... FROM schema.table WHERE <row filter>) AS <alias or table name>

built from the policy's answers for the caller. The masked columns are constants inside that
subquery, so no expression, alias, ORDER BY, GROUP BY, WHERE oracle or join of the user's query
can reach the clear value.

Name resolution (documented choice): `schema.table` is taken as written; an unqualified name is
first a CTE visible at that point (SQL scoping, inner WITH shadows outer), otherwise the first of
SEARCH_PATH (marts, then banking) that holds a governed table of that name. CTEs are renamed to
private names so the engine cannot resolve any reference differently from this module.
Catalog-qualified names, system schemas, table functions other than unnest/range and every table
outside the governed catalog are denied.

Engines: locally the rewritten SQL runs on DuckDB over the curated layer (`DuckDBEngine`). In the
k8s profile it runs on Trino (`akko_assets.governance.trino.TrinoEngine`) as the caller's own user,
so Trino's OPA access control enforces the same policies a second time. The rewrite is written in
the engine's dialect by sqlglot; the query is read in `read_dialect` (DuckDB for the SQL this
project generates, the engine's dialect for what people type).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from akko_assets.governance.errors import AccessDenied, QueryError
from akko_assets.governance.identity import Identity
from akko_assets.governance.policy import PolicyEngine
from akko_assets.observability.tracing import query_span

SEARCH_PATH = ("marts", "banking")
DIALECT = "duckdb"
COLUMN_CACHE_SECONDS = 60.0

# Table functions that only turn values into rows; everything else in FROM position is denied.
ALLOWED_TABLE_FUNCTIONS = frozenset({"unnest", "range", "generate_series"})
# Scalar or table functions that read files, other databases, settings, secrets or the catalog, or
# run SQL given as a string (which would escape the rewrite).
DENIED_FUNCTIONS = frozenset(
    {
        "getenv", "current_setting", "getvariable", "query", "query_table", "glob", "sniff_csv",
        "json_execute_serialized_sql", "sql_auto_complete", "which_secret", "checkpoint",
        "force_checkpoint", "summary", "test_all_types", "test_vector_types", "arrow_scan",
        "arrow_scan_dumb", "seq_scan", "index_scan", "load_aws_credentials", "st_read",
        "st_read_meta", "st_drivers", "current_schemas", "nextval", "currval",
    }
)
DENIED_FUNCTION_PREFIXES = (
    "read_", "duckdb_", "pragma_", "iceberg_", "parquet_", "postgres_", "pg_", "sqlite_", "mysql_",
    "delta_", "http_", "json_execute", "ducklake_", "unity_", "azure_", "s3_", "gcs_", "enable_",
    "disable_",
)
SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "system", "temp"})
# Statement and clause node types that are never part of a read-only query.
_DENIED_NODE_NAMES = (
    "Command", "DDL", "DML", "Into", "Pragma", "Set", "Attach", "Detach", "Copy", "Install", "Use",
    "Describe", "Summarize", "Transaction", "Commit", "Rollback", "Create", "Drop", "Alter", "Insert",
    "Update", "Delete", "Merge", "Export", "Show", "Kill", "Cache", "Uncache", "Refresh", "LoadData",
    "Grant", "Revoke", "Analyze", "Lock", "SessionParameter", "Placeholder", "Parameter",
)
_DENIED_NODES = tuple(getattr(exp, n) for n in _DENIED_NODE_NAMES if hasattr(exp, n))
# Table clauses that move onto the replacing subquery unchanged; any other clause is denied.
_MOVABLE_TABLE_ARGS = ("pivots", "joins", "laterals", "sample")
_PLAIN_TABLE_ARGS = frozenset({"this", "db", "catalog", "alias", *_MOVABLE_TABLE_ARGS})
_CTE_PREFIX = "_akko_cte_"
# Alias of the base table inside each governed subquery. Policy expressions are qualified with it so
# a column the table lacks is an error, never a silent bind to a column of the user's outer query.
_BASE_ALIAS = "_akko_base"



@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class EngineSession(Protocol):
    """One caller's connection to the SQL engine, for one governed call."""

    def describe(self, schema: str, table: str) -> tuple[tuple[str, str], ...]:
        """(column, type) pairs; QueryError when the table is missing."""

    def run(self, sql: str, limit: int | None) -> QueryResult:
        """Run already-governed SQL; QueryError (or AccessDenied from the engine) on failure."""

    def close(self) -> None: ...


class Engine(Protocol):
    """Where governed SQL runs: its sqlglot dialect and a session per caller."""

    name: str
    dialect: str

    def open(self, identity: Identity) -> EngineSession: ...


class DuckDBSession:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def describe(self, schema: str, table: str) -> tuple[tuple[str, str], ...]:
        relation = exp.table_(table, db=schema, quoted=True).sql("duckdb")
        try:
            described = self.connection.execute(f"DESCRIBE {relation}").fetchall()
        except duckdb.Error:
            raise QueryError(f"table {schema}.{table} is governed but missing in the curated layer: materialize it first") from None
        return tuple((str(row[0]), str(row[1])) for row in described)

    def run(self, sql: str, limit: int | None) -> QueryResult:
        try:
            cursor = self.connection.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            if limit is None:
                rows = cursor.fetchall()
            else:
                rows = cursor.fetchmany(limit) if limit > 0 else []
        except duckdb.Error as exc:
            raise QueryError(f"query failed: {_one_line(str(exc).splitlines()[0])}") from None
        return QueryResult(columns=columns, rows=[tuple(r) for r in rows])

    def close(self) -> None:
        self.connection.close()


class DuckDBEngine:
    """The local profile: a new DuckDB connection to the curated layer per call (the identity is
    enforced by the rewrite alone, DuckDB has no users)."""

    name = "duckdb"
    dialect = "duckdb"

    def __init__(self, connect: Callable[[], duckdb.DuckDBPyConnection]) -> None:
        self.connect = connect

    def open(self, identity: Identity) -> DuckDBSession:
        return DuckDBSession(self.connect())


def engine_for_profile(profile: str, local_connect: Callable[[], duckdb.DuckDBPyConnection]) -> Engine:
    """k8s: Trino, queried as the caller (TRINO_* settings); local: DuckDB over the curated layer."""
    if profile == "k8s":
        from akko_assets.governance.trino import TrinoEngine  # k8s-only dependency

        return TrinoEngine.from_env()
    return DuckDBEngine(local_connect)


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _check_function(node: exp.Func) -> None:
    name = _function_name(node)
    if name in DENIED_FUNCTIONS or name.startswith(DENIED_FUNCTION_PREFIXES):
        raise AccessDenied(f"function {name}() is not allowed: it reads files, settings or catalogs outside the governed tables")


def _parse(sql: str, dialect: str = DIALECT) -> exp.Expression:
    sqlglot_log = logging.getLogger("sqlglot")
    previous = sqlglot_log.level
    sqlglot_log.setLevel(logging.ERROR)  # its "falling back to Command" warnings are our denials
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as exc:
        errors = getattr(exc, "errors", None) or [{}]
        first = errors[0]
        where = f" (line {first['line']}, column {first['col']})" if "line" in first else ""
        detail = first.get("description") or str(exc).splitlines()[0]
        raise AccessDenied(f"the query is not valid SQL: {_one_line(detail, 120)}{where}") from None
    finally:
        sqlglot_log.setLevel(previous)
    if len(statements) != 1:
        raise AccessDenied(f"exactly one SELECT statement is allowed, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, (exp.Select, exp.SetOperation, exp.Subquery)):
        # sqlglot parses what it does not know (LOAD, CALL, CHECKPOINT, ...) as a Command or a
        # bare column: name the statement by its first word then.
        kind = root.key.upper()
        if isinstance(root, (exp.Command, exp.Column, exp.Identifier)):
            kind = (sql.split() or ["?"])[0].upper()
        raise AccessDenied(f"only SELECT queries are allowed, got {kind}")
    return root


def _validate(root: exp.Expression) -> None:
    for node in root.walk():
        if isinstance(node, _DENIED_NODES):
            raise AccessDenied(f"{node.key.upper()} is not allowed: only read-only SELECT queries are")
        if isinstance(node, exp.Func):
            _check_function(node)
        if isinstance(node, exp.With):
            names = [cte.alias_or_name.lower() for cte in node.expressions]
            if len(names) != len(set(names)):
                raise AccessDenied("a WITH clause defines the same CTE name twice")


@lru_cache(maxsize=256)
def _policy_expression(sql: str) -> exp.Expression:
    """Parse a mask or row-filter expression from the policy; it may only compute over the row."""
    try:
        expression = sqlglot.parse_one(sql, read=DIALECT)
    except SqlglotError:
        raise AccessDenied(f"policy expression {sql!r} is not valid SQL; denying (fail closed)") from None
    for node in expression.walk():
        if isinstance(node, (exp.Query, exp.Table, *_DENIED_NODES)):
            raise AccessDenied(f"policy expression {sql!r} reads tables or runs statements; denying (fail closed)")
        if isinstance(node, exp.Func):
            _check_function(node)
    return expression


def _qualified(expression: exp.Expression) -> exp.Expression:
    """A copy of a policy expression with every column bound to the governed base table."""
    copy = expression.copy()
    for column in copy.find_all(exp.Column):
        column.set("table", exp.to_identifier(_BASE_ALIAS))
    return copy


def _visible_cte(table: exp.Table) -> exp.CTE | None:
    """The CTE an unqualified table name refers to, by SQL scoping, or None for a base table."""
    name = table.name.lower()
    child: exp.Expression = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With) and isinstance(child, exp.CTE):
            # Inside a CTE body: earlier siblings are visible, itself only under WITH RECURSIVE.
            ctes = list(node.expressions)
            index = next(i for i, cte in enumerate(ctes) if cte is child)
            candidates = ctes[:index] + ([child] if node.args.get("recursive") else [])
            for cte in reversed(candidates):
                if cte.alias_or_name.lower() == name:
                    return cte
        else:
            with_ = node.args.get("with_") or node.args.get("with")
            if isinstance(with_, exp.With) and child is not with_:
                for cte in with_.expressions:
                    if cte.alias_or_name.lower() == name:
                        return cte
        child, node = node, node.parent
    return None


class GovernedExecutor:
    """Runs one read-only SELECT as `identity`, with the policy's masks and row filters applied.

    `connect` is an `Engine`, or a function returning a new DuckDB connection to the curated layer
    (the local profile). The executor opens one engine session per call and closes it after.
    Column lists come from the engine (DESCRIBE), cached briefly.
    """

    def __init__(
        self,
        connect: Engine | Callable[[], duckdb.DuckDBPyConnection],
        policy: PolicyEngine,
        *,
        extra_tables: Iterable[str] = (),
        search_path: Iterable[str] = SEARCH_PATH,
        read_dialect: str | None = DIALECT,
    ) -> None:
        self.engine: Engine = connect if hasattr(connect, "open") else DuckDBEngine(connect)  # type: ignore[assignment]
        # None: read what people type, the engine's own dialect.
        self.read_dialect = read_dialect or self.engine.dialect
        self.policy = policy
        extra = list(extra_tables)
        if extra:
            policy.add_governed_tables(extra)
        self.search_path = tuple(s.lower() for s in search_path)
        self._columns: dict[str, tuple[float, tuple[tuple[str, str], ...]]] = {}
        self._subqueries: dict[tuple[Any, ...], tuple[Any, exp.Select]] = {}

    # -- public API ------------------------------------------------------------------------------

    def rewrite(self, sql: str, identity: Identity) -> str:
        """The SQL the engine would run for `identity` (raises AccessDenied like execute)."""
        holder: list[EngineSession] = []

        def session() -> EngineSession:
            if not holder:
                holder.append(self._open(identity))
            return holder[0]

        try:
            return self._rewrite(sql, identity, session)
        finally:
            for opened in holder:
                opened.close()

    def execute(self, sql: str, identity: Identity, limit: int | None = None) -> QueryResult:
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be positive or None, got {limit}")
        with query_span(sql, role=",".join(sorted(identity.roles)), engine=self.engine.name) as record:
            result = self._execute(sql, identity, limit)
            record(len(result.rows))
            return result

    def _execute(self, sql: str, identity: Identity, limit: int | None) -> QueryResult:
        if not identity.roles:
            raise AccessDenied(f"user {identity.user!r} has no akko role")
        session = self._open(identity)
        try:
            rewritten = self._rewrite(sql, identity, lambda: session)
            return session.run(rewritten, limit)
        finally:
            session.close()

    # -- internals -------------------------------------------------------------------------------

    def _open(self, identity: Identity) -> EngineSession:
        try:
            return self.engine.open(identity)
        except (AccessDenied, QueryError):
            raise
        except Exception as exc:  # any failure to reach the curated layer is one clear line
            raise QueryError(f"cannot open the curated layer: {_one_line(str(exc).splitlines()[0] if str(exc) else repr(exc))}") from None

    def _table_columns(self, schema: str, table: str, session: Callable[[], EngineSession]) -> tuple[tuple[str, str], ...]:
        key = f"{schema}.{table}"
        cached = self._columns.get(key)
        if cached and time.monotonic() - cached[0] < COLUMN_CACHE_SECONDS:
            return cached[1]
        columns = session().describe(schema, table)
        self._columns[key] = (time.monotonic(), columns)
        return columns

    def _resolve(self, table: exp.Table) -> tuple[str, str]:
        """(schema, table) of a governed base table, or AccessDenied."""
        written = ".".join(part for part in (table.catalog, table.db, table.name) if part)
        if table.catalog:
            raise AccessDenied(f"catalog-qualified table {written} is not allowed: write schema.table")
        schema, name = table.db.lower(), table.name.lower()
        if schema in SYSTEM_SCHEMAS or name.startswith(("duckdb_", "pragma_", "sqlite_")):
            raise AccessDenied(f"system catalog {written} is not allowed")
        governed = self.policy.governed_tables
        if schema:
            if f"{schema}.{name}" in governed:
                return schema, name
        else:
            for candidate in self.search_path:
                if f"{candidate}.{name}" in governed:
                    return candidate, name
        known = ", ".join(sorted(governed))
        raise AccessDenied(f"table {written} is not in the governed catalog ({known})")

    def _governed_subquery(
        self,
        table: exp.Table,
        schema: str,
        name: str,
        identity: Identity,
        session: Callable[[], EngineSession],
    ) -> exp.Subquery:
        columns = self._table_columns(schema, name, session)
        policy = self.policy.table_policy(identity, schema, name, columns)
        key = (identity.roles, schema, name, columns)
        cached = self._subqueries.get(key)
        if cached is None or cached[0] is not policy:
            projections: list[exp.Expression] = []
            for column, _type in columns:
                if column in policy.masks:
                    mask = _qualified(_policy_expression(policy.masks[column]))
                    projections.append(exp.alias_(mask, column, quoted=True))
                else:
                    projections.append(exp.column(column, table=_BASE_ALIAS, quoted=True))
            base = exp.table_(name, db=schema, quoted=True, alias=_BASE_ALIAS)
            built = exp.select(*projections, copy=False).from_(base, copy=False)
            if policy.row_filter:
                built = built.where(_qualified(_policy_expression(policy.row_filter)), copy=False)
            # Built once per (roles, table, columns) and policy answer; copied per use.
            cached = (policy, built)
            self._subqueries[key] = cached
        inner = cached[1].copy()
        alias = table.args.get("alias")
        if alias is None:
            # Keep the written name as the alias so `fct_transactions.amount` still binds.
            alias = exp.TableAlias(this=exp.to_identifier(table.name, quoted=table.this.quoted))
        subquery = exp.Subquery(this=inner, alias=alias.copy())
        for arg in _MOVABLE_TABLE_ARGS:
            if table.args.get(arg):
                subquery.set(arg, table.args[arg])
        return subquery

    def _rewrite(self, sql: str, identity: Identity, session: Callable[[], EngineSession]) -> str:
        root = _parse(sql, self.read_dialect)
        _validate(root)

        # Decide every table reference before changing the tree (names change below).
        cte_names = {id(cte): f"{_CTE_PREFIX}{i}" for i, cte in enumerate(root.find_all(exp.CTE))}
        cte_refs: list[tuple[exp.Table, str]] = []
        base_refs: list[tuple[exp.Table, str, str]] = []
        for table in list(root.find_all(exp.Table)):
            if isinstance(table.this, exp.Func):
                function = _function_name(table.this)
                if function not in ALLOWED_TABLE_FUNCTIONS:
                    raise AccessDenied(f"table function {function}() is not allowed: query the governed tables")
                continue
            if not isinstance(table.this, exp.Identifier):
                raise AccessDenied(f"unsupported table reference {_one_line(table.sql(DIALECT))}")
            extra = {k for k, v in table.args.items() if v} - _PLAIN_TABLE_ARGS
            if extra:
                raise AccessDenied(f"table clause {', '.join(sorted(extra))} is not allowed on {table.name}")
            if not table.db and not table.catalog:
                cte = _visible_cte(table)
                if cte is not None:
                    cte_refs.append((table, cte_names[id(cte)]))
                    continue
            schema, name = self._resolve(table)
            base_refs.append((table, schema, name))

        # Policies and column lists first: a denial raises here and the parsed tree is dropped.
        replacements = [
            (table, self._governed_subquery(table, schema, name, identity, session))
            for table, schema, name in base_refs
        ]
        for cte in root.find_all(exp.CTE):
            cte.args["alias"].set("this", exp.to_identifier(cte_names[id(cte)]))
        for table, private in cte_refs:
            if table.args.get("alias") is None:
                table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name, quoted=table.this.quoted)))
            table.set("this", exp.to_identifier(private))
        for table, subquery in replacements:
            table.replace(subquery)
        if self.engine.dialect == self.read_dialect:
            return root.sql(dialect=self.engine.dialect, comments=False)
        try:
            # Transpiling must not silently drop what it cannot express (sqlglot's default warns).
            return root.sql(dialect=self.engine.dialect, comments=False, unsupported_level=ErrorLevel.RAISE)
        except SqlglotError as exc:
            raise QueryError(
                f"the query uses {self.read_dialect} syntax {self.engine.name} cannot run: {_one_line(str(exc), 160)}"
            ) from None
