"""PII classification generated from a dbt manifest's column meta tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from akko_assets.governance import Identity, PolicyEngine, generate_pii_data, write_pii_data
from akko_assets.governance.pii import PII_DATA_PATH, ManifestError
from akko_assets.settings import MASK

MANIFEST = Path(__file__).parent / "data" / "governance_manifest.json"
MASKED = f"'{MASK}'"


def test_generate_from_manifest() -> None:
    tables = generate_pii_data(MANIFEST)["akko"]["pii"]["tables"]
    assert tables == {
        "akko.raw_transactions": {},
        "banking.transactions": {"card_pan": "pan", "customer_name": "name"},
        "marts.customer_notes_v2": {"note": "unspecified"},  # alias wins; pii: true has no class
        "marts.dim_customers": {"card_pan": "pan", "customer_name": "name"},  # config.meta counts too
        "marts.enriched_transactions": {"card_pan": "pan", "customer_name": "name"},  # inherited
        "marts.fct_transactions": {"card_pan": "pan", "customer_name": "name"},
        "marts.fraud_daily": {},
        "staging.stg_transactions": {"card_pan": "pan", "customer_name": "name"},
    }  # the ephemeral model and the test node have no relation


def test_derived_relation_inherits_and_own_tags_win(tmp_path: Path) -> None:
    manifest = json.loads(MANIFEST.read_text())
    manifest["nodes"]["model.akko.enriched_transactions"] = {
        "resource_type": "model", "name": "enriched_transactions", "schema": "marts", "config": {"materialized": "table"},
        "columns": {"memo": {"name": "memo", "meta": {"pii": "free_text"}}},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    tables = generate_pii_data(path)["akko"]["pii"]["tables"]
    assert tables["marts.enriched_transactions"] == {"card_pan": "pan", "customer_name": "name", "memo": "free_text"}
    no_derived = generate_pii_data(MANIFEST, derived={})["akko"]["pii"]["tables"]
    assert "marts.enriched_transactions" not in no_derived


def test_default_pii_file_matches_generator_convention() -> None:
    shipped = json.loads(PII_DATA_PATH.read_text())["akko"]["pii"]["tables"]
    generated = generate_pii_data(MANIFEST)["akko"]["pii"]["tables"]
    for table, columns in shipped.items():
        assert generated[table] == columns


def test_write_pii_data(tmp_path: Path) -> None:
    out = write_pii_data(MANIFEST, tmp_path / "data" / "pii.json")
    assert json.loads(out.read_text()) == generate_pii_data(MANIFEST)
    assert "1.11.2" in json.loads(out.read_text())["akko"]["pii"]["generated_from"]


def test_generated_data_drives_the_policy() -> None:
    rbac = json.loads((PII_DATA_PATH.parent / "rbac.json").read_text())
    engine = PolicyEngine(data=[rbac, generate_pii_data(MANIFEST)])
    assert "staging.stg_transactions" in engine.governed_tables
    columns = [("note", "VARCHAR"), ("customer_id", "VARCHAR")]
    # `pii: true` without a class: masked even for the admin (deny by default).
    policy = engine.table_policy(Identity("alice", ["akko-admin"]), "marts", "customer_notes_v2", columns)
    assert policy.masks == {"note": MASKED}
    analyst = engine.table_policy(
        Identity("carol", ["akko-analyst"]), "staging", "stg_transactions",
        [("customer_name", "VARCHAR"), ("card_pan", "VARCHAR"), ("transaction_id", "VARCHAR")],
    )
    assert analyst.masks == {"card_pan": MASKED}


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ('{"metadata": {}}', "is not a dbt manifest"),
        (
            (
                '{"nodes": {"model.a.b": {"resource_type": "model", "name": "b", "schema": "s", "config": {},'
                ' "columns": {"c": {"name": "c", "meta": {"pii": 3}}}}}}'
            ),
            "meta.pii must be a class name",
        ),
    ],
)
def test_bad_manifests(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "manifest.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError, match=message):
        generate_pii_data(path)
