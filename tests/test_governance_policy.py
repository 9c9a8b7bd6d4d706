"""The in-process policy engine: Trino-contract answers, caching, and fail-closed behaviour."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from akko_assets.governance import AccessDenied, GovernedExecutor, Identity, PolicyEngine
from akko_assets.governance.pii import OPA_DIR
from akko_assets.governance.sample import build_sample_curated
from akko_assets.settings import MASK

COLUMNS = [("transaction_id", "VARCHAR"), ("customer_name", "VARCHAR"), ("card_pan", "VARCHAR"), ("amount", "DECIMAL(12,2)")]
MASKED = f"'{MASK}'"


def answer(engine: PolicyEngine, role: str):
    return engine.table_policy(Identity("x", [role]), "marts", "fct_transactions", COLUMNS)


def test_answers_per_role() -> None:
    engine = PolicyEngine()
    assert answer(engine, "akko-admin").masks == {}
    assert answer(engine, "akko-engineer").masks == {}
    assert answer(engine, "akko-analyst").masks == {"card_pan": MASKED}
    assert answer(engine, "akko-user").masks == {"card_pan": MASKED, "customer_name": MASKED}
    viewer = answer(engine, "akko-viewer")
    assert viewer.masks == {"card_pan": MASKED, "customer_name": MASKED}
    assert viewer.row_filter == "(region IN ('EU','APAC') AND status = 'active')"
    assert answer(engine, "akko-user").row_filter is None


def test_cached_per_roles_and_table() -> None:
    engine = PolicyEngine()
    first = engine.table_policy(Identity("carol", ["akko-analyst"]), "marts", "fct_transactions", COLUMNS)
    again = engine.table_policy(Identity("svc-superset", ["akko-analyst"]), "MARTS", "FCT_TRANSACTIONS", COLUMNS)
    assert again is first
    assert engine.table_policy(Identity("dave", ["akko-user"]), "marts", "fct_transactions", COLUMNS) is not first


def test_no_role_and_unknown_table_denied() -> None:
    engine = PolicyEngine()
    with pytest.raises(AccessDenied, match="no akko role"):
        engine.table_policy(Identity("nobody", []), "marts", "fct_transactions", COLUMNS)
    with pytest.raises(AccessDenied, match="may not read staging.secrets"):
        engine.table_policy(Identity("dave", ["akko-user"]), "staging", "secrets", COLUMNS)


def _policy_copy(tmp_path: Path) -> Path:
    target = tmp_path / "opa"
    shutil.copytree(OPA_DIR, target)
    return target


def test_policy_that_does_not_compile_denies(tmp_path: Path) -> None:
    opa = _policy_copy(tmp_path)
    (opa / "trino" / "masks.rego").write_text("package trino\nimport rego.v1\nmasked(c) if {{{ \n")
    with pytest.raises(AccessDenied, match="do not compile"):
        PolicyEngine(policy_dir=opa)


def test_missing_policies_deny(tmp_path: Path) -> None:
    with pytest.raises(AccessDenied, match="no Rego policies"):
        PolicyEngine(policy_dir=tmp_path)


@pytest.mark.parametrize(
    "replacement,message",
    [
        # The mask rule is gone: no answer is not "no mask", it is a denial.
        ("", "policy evaluation failed .*not a valid rule path"),
        # A malformed answer (index out of range).
        ('batchColumnMasks contains {"index": 99, "viewExpression": {"expression": "NULL"}} if true', "malformed column mask"),
        # A rule of the wrong shape (a boolean instead of a set of masks).
        ("batchColumnMasks := true", "no column-mask answer"),
    ],
)
def test_bad_mask_answers_fail_closed(tmp_path: Path, replacement: str, message: str) -> None:
    opa = _policy_copy(tmp_path)
    masks = opa / "trino" / "masks.rego"
    text = masks.read_text()
    start = text.index("batchColumnMasks contains")
    masks.write_text(text[:start] + replacement + "\n")
    engine = PolicyEngine(policy_dir=opa)
    with pytest.raises(AccessDenied, match=message):
        answer(engine, "akko-user")


def test_policy_mask_expression_reading_tables_is_refused(tmp_path: Path) -> None:
    """Even a policy cannot smuggle a subquery or file reader into the rewrite."""
    curated = tmp_path / "c.duckdb"
    con = duckdb.connect(str(curated))
    build_sample_curated(con, rows=20, customers=5)
    con.close()
    opa = _policy_copy(tmp_path)
    rbac = opa / "data" / "rbac.json"
    rbac.write_text(rbac.read_text().replace("\"'***MASKED***'\"", "\"(SELECT max(card_pan) FROM read_csv('x'))\""))
    executor = GovernedExecutor(lambda: duckdb.connect(str(curated), read_only=True), PolicyEngine(policy_dir=opa))
    with pytest.raises(AccessDenied, match="policy expression"):
        executor.execute("SELECT card_pan FROM marts.dim_customers", Identity("dave", ["akko-user"]))
