"""PII classification for the policies, generated from the dbt manifest's column `meta` tags.

Convention: a dbt model, seed, snapshot or source column tagged `meta: {pii: name}` or
`meta: {pii: pan}` (or the same under `config: {meta: ...}`, dbt >= 1.10) is PII of that class.
The output is the document OPA / regorus mount at `data.akko.pii`: every relation dbt knows, as
"schema.table", with its PII columns. Relations with no PII column are listed too (empty), because
the list is also the governed catalog: tables outside it are denied.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from akko_assets.settings import REPO_ROOT

OPA_DIR = REPO_ROOT / "opa"
PII_DATA_PATH = OPA_DIR / "data" / "pii.json"
_RELATION_NODES = ("model", "seed", "snapshot")
# Relations built outside dbt from a dbt relation, keeping its columns (the enrichment stage adds
# scores to fct_transactions in one SQL statement): they inherit that relation's classification.
DERIVED_RELATIONS = {"marts.enriched_transactions": "marts.fct_transactions"}
# `pii: true` names no class: it becomes a class no role sees in clear (deny by default).
UNSPECIFIED_CLASS = "unspecified"


class ManifestError(ValueError):
    """The file is not a dbt manifest the generator understands."""


def _pii_class(column: dict[str, Any], where: str) -> str | None:
    meta = dict(column.get("meta") or {})
    meta.update((column.get("config") or {}).get("meta") or {})
    value = meta.get("pii")
    if value is None or value is False:
        return None
    if value is True:
        return UNSPECIFIED_CLASS
    if isinstance(value, str) and value.strip():
        return value.strip().lower()
    raise ManifestError(f"{where}: meta.pii must be a class name such as 'name' or 'pan', got {value!r}")


def _columns(entry: dict[str, Any], relation: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, column in (entry.get("columns") or {}).items():
        cls = _pii_class(column, f"{relation}.{name}")
        if cls:
            found[str(column.get("name") or name).lower()] = cls
    return found


def generate_pii_data(
    manifest_path: str | os.PathLike[str], derived: dict[str, str] | None = None
) -> dict[str, Any]:
    """Read a dbt manifest.json and return `{"akko": {"pii": {"tables": {"schema.table": {col: class}}}}}`.

    `derived` (default DERIVED_RELATIONS) maps relations built outside dbt to the dbt relation
    they extend; they get its classification unless the manifest describes them itself.
    """
    path = Path(manifest_path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path} does not exist: run `dbt parse` in dbt/ first") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not JSON ({exc}): rebuild it with `dbt parse`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("nodes"), dict):
        raise ManifestError(f"{path} is not a dbt manifest (no 'nodes'): point at dbt/target/manifest.json")

    tables: dict[str, dict[str, str]] = {}

    def add(schema: str, table: str, columns: dict[str, str]) -> None:
        relation = f"{schema}.{table}".lower()
        tables.setdefault(relation, {}).update(columns)

    for node in manifest["nodes"].values():
        if node.get("resource_type") not in _RELATION_NODES:
            continue
        if (node.get("config") or {}).get("materialized") == "ephemeral":
            continue  # no relation in the warehouse
        table = node.get("alias") or node["name"]
        add(node["schema"], table, _columns(node, f"{node['schema']}.{table}"))
    for source in (manifest.get("sources") or {}).values():
        table = source.get("identifier") or source["name"]
        add(source["schema"], table, _columns(source, f"{source['schema']}.{table}"))

    for relation, parent in (DERIVED_RELATIONS if derived is None else derived).items():
        if parent.lower() in tables:
            inherited = dict(tables[parent.lower()])
            inherited.update(tables.get(relation.lower(), {}))
            tables[relation.lower()] = inherited

    metadata = manifest.get("metadata") or {}
    return {
        "akko": {
            "pii": {
                "generated_from": (
                    f"dbt manifest (dbt {metadata.get('dbt_version', '?')}, "
                    f"generated {metadata.get('generated_at', '?')})"
                ),
                "tables": {k: dict(sorted(v.items())) for k, v in sorted(tables.items())},
            }
        }
    }


def write_pii_data(manifest_path: str | os.PathLike[str], out: Path = PII_DATA_PATH) -> Path:
    """Regenerate opa/data/pii.json (or `out`) from the manifest; returns the path written."""
    document = generate_pii_data(manifest_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(out)
    return out
