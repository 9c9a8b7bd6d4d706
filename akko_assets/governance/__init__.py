"""Governance: identity (Keycloak-shaped JWTs), Rego policies in Trino's OPA contract, and the
governed executor every read path goes through. See opa/README.md for the policy layout."""

from akko_assets.governance.cli import run_sql_command, token_command
from akko_assets.governance.errors import AccessDenied, QueryError
from akko_assets.governance.executor import GovernedExecutor, QueryResult, engine_for_profile
from akko_assets.governance.identity import (
    Identity,
    identity_for_user,
    issue_token,
    verify_token,
)
from akko_assets.governance.pii import generate_pii_data, write_pii_data
from akko_assets.governance.policy import PolicyEngine, TablePolicy

__all__ = [
    "AccessDenied",
    "GovernedExecutor",
    "Identity",
    "PolicyEngine",
    "QueryError",
    "QueryResult",
    "TablePolicy",
    "engine_for_profile",
    "generate_pii_data",
    "identity_for_user",
    "issue_token",
    "run_sql_command",
    "token_command",
    "verify_token",
    "write_pii_data",
]
