"""Rego unit tests (opa/**/*_test.rego) run with regorus, plus checks of the policy data files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import regorus

from akko_assets.governance.pii import OPA_DIR
from akko_assets.settings import MASK, REPO_ROOT

TEST_RULE = re.compile(r"^(test_\w+)\s+if\b", re.MULTILINE)


def rego_tests(policy_dir: Path) -> list[tuple[str, str]]:
    """(package, rule) for every test rule in the *_test.rego files."""
    found = []
    for path in sorted(policy_dir.rglob("*_test.rego")):
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+)", text, re.MULTILINE).group(1)
        found += [(package, name) for name in TEST_RULE.findall(text)]
    return found


def engine_for(policy_dir: Path) -> regorus.Engine:
    """What `opa test opa/` loads: every .rego file and every data document."""
    engine = regorus.Engine()
    for path in sorted(policy_dir.rglob("*.rego")):
        engine.add_policy_from_file(str(path))
    for path in sorted((policy_dir / "data").glob("*.json")):
        engine.add_data_json(path.read_text())
    return engine


def run_rego_tests(policy_dir: Path) -> dict[str, bool]:
    engine = engine_for(policy_dir)
    results = {}
    for package, name in rego_tests(policy_dir):
        # An undefined test (a false body) evaluates to None: that is a failure, like in `opa test`.
        results[f"{package}.{name}"] = engine.eval_rule(f"data.{package}.{name}") is True
    return results


def test_every_policy_file_has_a_test_file() -> None:
    policies = [p for p in OPA_DIR.rglob("*.rego") if not p.name.endswith("_test.rego")]
    assert len(policies) >= 4
    for path in policies:
        assert path.with_name(path.stem + "_test.rego").exists(), f"{path} has no _test.rego beside it"


def test_policies_are_rego_v1_in_package_trino() -> None:
    for path in OPA_DIR.rglob("*.rego"):
        text = path.read_text()
        assert "import rego.v1" in text, path
        assert re.search(r"^package trino(_test)?$", text, re.MULTILINE), path


_CACHE: dict[str, dict[str, bool]] = {}


def _results() -> dict[str, bool]:
    if "opa" not in _CACHE:
        _CACHE["opa"] = run_rego_tests(OPA_DIR)
    return _CACHE["opa"]


@pytest.mark.parametrize("package,name", rego_tests(OPA_DIR))
def test_rego(package: str, name: str) -> None:
    results = _results()
    assert results[f"{package}.{name}"], f"Rego test {package}.{name} failed"


def test_enough_rego_tests() -> None:
    assert len(rego_tests(OPA_DIR)) >= 30


def test_runner_reports_failures(tmp_path: Path) -> None:
    """A policy bug (viewer may see card numbers) makes Rego tests fail: the runner is not blind."""
    broken = tmp_path / "opa"
    shutil.copytree(OPA_DIR, broken)
    rbac_path = broken / "data" / "rbac.json"
    rbac = json.loads(rbac_path.read_text())
    rbac["akko"]["rbac"]["column_classes"]["pan"]["clear_for"].append("akko-viewer")
    rbac_path.write_text(json.dumps(rbac))
    results = run_rego_tests(broken)
    failed = {k for k, ok in results.items() if not ok}
    assert "trino_test.test_pan_clear_only_for_admin_and_engineer" in failed
    assert len(failed) < len(results)


def test_rbac_data_matches_design() -> None:
    rbac = json.loads((OPA_DIR / "data" / "rbac.json").read_text())["akko"]["rbac"]
    assert rbac["roles"] == ["akko-admin", "akko-engineer", "akko-analyst", "akko-user", "akko-viewer"]
    assert rbac["mask_expression"] == f"'{MASK}'"
    assert set(rbac["column_classes"]["name"]["clear_for"]) == {"akko-admin", "akko-engineer", "akko-analyst"}
    assert set(rbac["column_classes"]["pan"]["clear_for"]) == {"akko-admin", "akko-engineer"}
    assert rbac["row_filters"] == {"akko-viewer": "region IN ('EU','APAC') AND status = 'active'"}


def test_keycloak_realm_export() -> None:
    realm = json.loads((REPO_ROOT / "keycloak" / "realm-akko.json").read_text())
    assert realm["realm"] == "akko" and realm["enabled"] is True
    roles = {r["name"] for r in realm["roles"]["realm"]}
    assert roles == {"akko-admin", "akko-engineer", "akko-analyst", "akko-user", "akko-viewer"}
    users = {u["username"]: u for u in realm["users"]}
    expected = {"alice": "akko-admin", "bob": "akko-engineer", "carol": "akko-analyst", "dave": "akko-user",
                "erin": "akko-viewer", "svc-superset": "akko-analyst"}
    for name, role in expected.items():
        assert users[name]["realmRoles"] == [role]
    assert users["svc-superset"]["serviceAccountClientId"] == "superset"
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert {"trino", "superset", "aden", "dagster"} <= set(clients)
    assert clients["superset"]["serviceAccountsEnabled"] is True
    # No secret is committed: every password and client secret is a deploy-time placeholder.
    placeholder = re.compile(r"^\$\{AKKO_KEYCLOAK_[A-Z0-9_]+\}$")
    for user in realm["users"]:
        for credential in user.get("credentials", []):
            assert placeholder.match(credential["value"]), user["username"]
    for client in realm["clients"]:
        assert placeholder.match(client["secret"]), client["clientId"]
