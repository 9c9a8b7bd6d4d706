"""The Rego policies of opa/, evaluated in-process with regorus, through Trino's OPA contract.

The engine builds exactly the input documents Trino's OPA access control sends
(`SelectFromColumns`, batched `GetColumnMask`, `GetRowFilters`) and reads the answers in Trino's
output shapes, so what passes here is what the OPA server answers Trino in the k8s profile.
Any evaluation error or unexpected answer denies (fail closed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regorus

from akko_assets.governance.errors import AccessDenied
from akko_assets.governance.identity import Identity
from akko_assets.governance.pii import OPA_DIR

# Trino's catalog for the same tables in the k8s profile; the policies key on schema.table only.
DEFAULT_CATALOG = "iceberg"
PACKAGE = "data.trino"
_UNDEFINED = '"<undefined>"'


@dataclass(frozen=True)
class TablePolicy:
    """What one identity may see of one table: SQL mask expressions per column, and a row filter."""

    table: str  # schema.table, lower case
    masks: Mapping[str, str]  # column name (as in the table) -> SQL expression replacing it
    row_filter: str | None  # SQL boolean expression over the table's columns, None = all rows


def _first_line(exc: Exception, limit: int = 200) -> str:
    """regorus messages may carry a native stack trace: keep the human part, on one line."""
    text = " ".join(str(exc).split("Stack backtrace")[0].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _merge(into: dict[str, Any], doc: Mapping[str, Any]) -> None:
    for key, value in doc.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = json.loads(json.dumps(value))


class PolicyEngine:
    """Loads opa/*.rego (not the tests) and opa/data/*.json; answers per (roles, table), cached."""

    def __init__(
        self,
        policy_dir: Path = OPA_DIR,
        data: Sequence[Mapping[str, Any]] | None = None,
        extra_tables: Iterable[str] = (),
        catalog: str = DEFAULT_CATALOG,
    ) -> None:
        self.policy_dir = Path(policy_dir)
        self.catalog = catalog
        policies = sorted(p for p in self.policy_dir.rglob("*.rego") if not p.name.endswith("_test.rego"))
        if not policies:
            raise AccessDenied(f"no Rego policies under {self.policy_dir}: restore opa/ (denying everything)")
        documents = list(data) if data is not None else [
            json.loads(p.read_text()) for p in sorted((self.policy_dir / "data").glob("*.json"))
        ]
        self._data: dict[str, Any] = {}
        for doc in documents:
            _merge(self._data, doc)
        self._engine = regorus.Engine()
        try:
            for path in policies:
                self._engine.add_policy_from_file(str(path))
        except Exception as exc:  # regorus raises plain exceptions for syntax errors
            raise AccessDenied(f"the policies in {self.policy_dir} do not compile ({_first_line(exc)}); denying everything") from None
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], TablePolicy] = {}
        self.add_governed_tables(extra_tables)

    # -- catalog ---------------------------------------------------------------------------------

    @property
    def governed_tables(self) -> frozenset[str]:
        """Every schema.table the classification data knows: the catalog the executor may read."""
        tables = self._data.get("akko", {}).get("pii", {}).get("tables", {})
        return frozenset(t.lower() for t in tables)

    def add_governed_tables(self, tables: Iterable[str]) -> None:
        """Allow-list tables the dbt manifest does not know; they get only name-based PII masks."""
        known = self._data.setdefault("akko", {}).setdefault("pii", {}).setdefault("tables", {})
        for table in tables:
            key = table.strip().lower()
            if key.count(".") != 1:
                raise ValueError(f"governed table {table!r} must be written schema.table")
            known.setdefault(key, {})
        with self._lock:
            self._engine.clear_data()
            self._engine.add_data_json(json.dumps(self._data))
            self._cache.clear()

    # -- evaluation ------------------------------------------------------------------------------

    def _eval(self, rule: str, document: dict[str, Any]) -> Any:
        """Evaluate one rule; called with the lock held (regorus engines are not re-entrant)."""
        self._engine.set_input_json(json.dumps(document))
        raw = self._engine.eval_rule_as_json(f"{PACKAGE}.{rule}")
        return None if raw == _UNDEFINED else json.loads(raw)

    def _context(self, identity: Identity) -> dict[str, Any]:
        return {
            "identity": {"user": identity.user, "groups": sorted(identity.roles)},
            "softwareStack": {"trinoVersion": "akko-local"},
        }

    def table_policy(self, identity: Identity, schema: str, table: str, columns: Sequence[tuple[str, str]]) -> TablePolicy:
        """Ask allow / batchColumnMasks / rowFilters for `schema.table` with `columns` (name, type).

        The answer depends on the caller's roles only (the policies do not look at the user name
        for these operations), so it is cached per (roles, table, columns).
        """
        key = (identity.roles, schema.lower(), table.lower(), tuple(columns))
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        name = f"{schema}.{table}".lower()
        context = self._context(identity)
        table_resource = {"catalogName": self.catalog, "schemaName": schema.lower(), "tableName": table.lower()}
        try:
            with self._lock:
                allowed = self._eval(
                    "allow",
                    {
                        "context": context,
                        "action": {
                            "operation": "SelectFromColumns",
                            "resource": {"table": {**table_resource, "columns": [c for c, _ in columns]}},
                        },
                    },
                )
                masks_answer = self._eval(
                    "batchColumnMasks",
                    {
                        "context": context,
                        "action": {
                            "operation": "GetColumnMask",
                            "filterResources": [
                                {"column": {**table_resource, "columnName": c, "columnType": t}} for c, t in columns
                            ],
                        },
                    },
                )
                filters_answer = self._eval(
                    "rowFilters",
                    {"context": context, "action": {"operation": "GetRowFilters", "resource": {"table": table_resource}}},
                )
        except Exception as exc:  # fail closed on anything the engine throws
            raise AccessDenied(f"policy evaluation failed for {name} ({_first_line(exc)}); denying (fail closed)") from None

        if allowed is not True:
            roles = ", ".join(sorted(identity.roles)) or "no akko role"
            raise AccessDenied(f"user {identity.user!r} ({roles}) may not read {name}")
        masks = self._parse_masks(name, masks_answer, columns)
        row_filter = self._parse_row_filters(name, filters_answer)
        policy = TablePolicy(table=name, masks=masks, row_filter=row_filter)
        self._cache[key] = policy
        return policy

    @staticmethod
    def _parse_masks(name: str, answer: Any, columns: Sequence[tuple[str, str]]) -> dict[str, str]:
        if not isinstance(answer, list):
            raise AccessDenied(f"policy returned no column-mask answer for {name}; denying (fail closed)")
        masks: dict[str, str] = {}
        for item in answer:
            try:
                index = item["index"]
                expression = item["viewExpression"]["expression"]
            except (TypeError, KeyError):
                raise AccessDenied(f"policy returned a malformed column mask for {name}; denying (fail closed)") from None
            if not isinstance(index, int) or not 0 <= index < len(columns) or not isinstance(expression, str):
                raise AccessDenied(f"policy returned a malformed column mask for {name}; denying (fail closed)")
            masks[columns[index][0]] = expression
        return masks

    @staticmethod
    def _parse_row_filters(name: str, answer: Any) -> str | None:
        if not isinstance(answer, list):
            raise AccessDenied(f"policy returned no row-filter answer for {name}; denying (fail closed)")
        expressions = []
        for item in answer:
            expression = item.get("expression") if isinstance(item, dict) else None
            if not isinstance(expression, str) or not expression.strip():
                raise AccessDenied(f"policy returned a malformed row filter for {name}; denying (fail closed)")
            expressions.append(expression)
        if not expressions:
            return None
        # Trino ANDs the filters it gets; so do we.
        return " AND ".join(f"({e})" for e in sorted(expressions))
