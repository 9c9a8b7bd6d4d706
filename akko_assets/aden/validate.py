"""Checks every generated SQL (semantic parser or LLM) must pass before it is run.

sqlglot parses the statement; it must be exactly one SELECT, read only catalog tables and columns,
and carry a LIMIT of at most MAX_ROWS (added or lowered here). The cost gate then asks DuckDB's
planner how many rows the scans would read and refuses above AKKO_ADEN_MAX_SCAN_ROWS. The governed
executor applies its own checks and the policies afterwards: this layer keeps ADEN inside the
semantic catalog, governance keeps everyone inside their rights.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from akko_assets.aden.errors import Refusal

DIALECT = "duckdb"
MAX_ROWS = 1000
DEFAULT_MAX_SCAN_ROWS = 50_000_000
_WRITE_NODES = tuple(
    getattr(exp, name) for name in (
        "Insert", "Update", "Delete", "Drop", "Create", "Alter", "Merge", "Command", "Copy", "Pragma", "Set",
        "Attach", "Detach", "Install", "Use", "TruncateTable", "Grant", "Revoke", "Into", "LoadData", "Transaction",
        "Commit", "Rollback",
    ) if hasattr(exp, name)
)


def max_scan_rows() -> int:
    raw = os.environ.get("AKKO_ADEN_MAX_SCAN_ROWS", "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_SCAN_ROWS
    try:
        value = int(raw)
    except ValueError:
        raise Refusal(f"AKKO_ADEN_MAX_SCAN_ROWS={raw!r} is not a whole number: set it to e.g. {DEFAULT_MAX_SCAN_ROWS}") from None
    if value < 1:
        raise Refusal(f"AKKO_ADEN_MAX_SCAN_ROWS={value} must be at least 1")
    return value


def _parse(sql: str) -> exp.Select:
    log = logging.getLogger("sqlglot")
    previous = log.level
    log.setLevel(logging.ERROR)
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        raise Refusal(f"the generated SQL does not parse: {str(exc).splitlines()[0][:160]}") from None
    finally:
        log.setLevel(previous)
    if len(statements) != 1:
        raise Refusal(f"the generated SQL must be exactly one statement, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, exp.Select):
        raise Refusal(f"only a SELECT may be run, got {root.key.upper()}")
    return root


def validate_sql(sql: str, catalog: Mapping[str, Any], max_rows: int = MAX_ROWS) -> tuple[str, list[str]]:
    """(SQL with a LIMIT <= max_rows, catalog tables it reads) or Refusal."""
    root = _parse(sql)
    for node in root.walk():
        if isinstance(node, _WRITE_NODES):
            raise Refusal(f"{node.key.upper()} is not allowed: ADEN only reads data")
    tables: dict[str, dict[str, Any]] = catalog["tables"]
    by_name: dict[str, list[str]] = {}
    for key in tables:
        by_name.setdefault(key.split(".")[1], []).append(key)
    cte_names = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}

    read: list[str] = []
    for table in root.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise Refusal(f"'{table.sql(DIALECT)}' is not a catalog table")
        name = table.name.lower()
        if table.catalog:
            raise Refusal(f"'{table.sql(DIALECT)}': write schema.table without a catalog")
        if not table.db and name in cte_names:
            continue
        if table.db:
            key = f"{table.db.lower()}.{name}"
            if key not in tables:
                raise Refusal(f"table {key} is not in the semantic catalog (known: {', '.join(sorted(tables))})")
        else:
            candidates = by_name.get(name, [])
            if len(candidates) != 1:
                raise Refusal(f"table {name} is not in the semantic catalog (known: {', '.join(sorted(tables))})")
            key = candidates[0]
        read.append(key)
    if not read:
        raise Refusal("the generated SQL reads no catalog table")

    known = {c.lower() for key in read for c in tables[key]["columns"]}
    aliases = {a.alias.lower() for a in root.find_all(exp.Alias) if a.alias}
    aliases |= {t.alias.lower() for t in root.find_all(exp.TableAlias) if t.name} | cte_names
    for alias in root.find_all(exp.TableAlias):
        aliases |= {c.name.lower() for c in alias.columns}
    for column in root.find_all(exp.Column):
        name = column.name.lower()
        if name and name not in known and name not in aliases and not isinstance(column.this, exp.Star):
            raise Refusal(f"column {column.name} is not in the catalog tables {', '.join(sorted(set(read)))}")

    limit = root.args.get("limit")
    if limit is None and not root.args.get("offset"):
        # Keep the SQL as written (it is shown to the user) and append the row limit.
        return sql.strip().rstrip(";").rstrip() + f"\nLIMIT {max_rows}", read
    try:
        current = int(limit.expression.name) if limit is not None and limit.expression is not None else None
    except (TypeError, ValueError):
        current = None
    if current is not None and 0 <= current <= max_rows:
        return sql.strip().rstrip(";").rstrip(), read
    root = root.limit(max_rows, copy=False)
    return root.sql(dialect=DIALECT, pretty=True), read


def estimate_scan_rows(sql: str, connect: Callable[[], duckdb.DuckDBPyConnection], catalog: Mapping[str, Any],
                       tables: list[str]) -> int:
    """Rows the scans would read, from DuckDB's plan (estimates after pushed-down filters); the
    catalog's row counts (full scans) when the planner cannot answer."""
    try:
        con = connect()
        try:
            plan = json.loads(con.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchall()[0][1])
        finally:
            con.close()
    except Exception:  # noqa: BLE001 - the planner is only an estimate; fall back to table sizes
        return sum(int(catalog["tables"][t].get("row_count", 0)) for t in tables)

    def scans(nodes: list[dict[str, Any]]) -> int:
        total = 0
        for node in nodes:
            if node.get("name", "").endswith("_SCAN"):
                total += int(str(node.get("extra_info", {}).get("Estimated Cardinality", "0")).strip("~") or 0)
            total += scans(node.get("children", []))
        return total

    return scans(plan if isinstance(plan, list) else [plan])


def cost_gate(sql: str, connect: Callable[[], duckdb.DuckDBPyConnection], catalog: Mapping[str, Any],
              tables: list[str]) -> int:
    budget = max_scan_rows()
    estimate = estimate_scan_rows(sql, connect, catalog, tables)
    if estimate > budget:
        raise Refusal(
            f"this question would scan about {estimate:,} rows, above the budget of {budget:,} "
            "(AKKO_ADEN_MAX_SCAN_ROWS): narrow it with a time range or a region, or raise the budget"
        )
    return estimate
