"""Keycloak-shaped JWTs: issued locally with an RS256 key in AKKO_HOME, verified with PyJWT."""

from __future__ import annotations

import json
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from akko_assets.governance import AccessDenied, Identity, identity_for_user, issue_token, verify_token
from akko_assets.governance.identity import DEFAULT_ISSUER, REALM_PATH, jwks, signing_key

REALM_USERS = {
    "alice": "akko-admin", "bob": "akko-engineer", "carol": "akko-analyst", "dave": "akko-user",
    "erin": "akko-viewer", "svc-superset": "akko-analyst",
}


@pytest.fixture(autouse=True)
def akko_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AKKO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AKKO_OIDC_ISSUER", raising=False)
    monkeypatch.delenv("AKKO_OIDC_JWKS_URL", raising=False)
    monkeypatch.setenv("AKKO_PROFILE", "local")
    return tmp_path / "home"


def claims_for(user: str = "carol", roles: list[str] | None = None, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": DEFAULT_ISSUER, "aud": "trino", "iat": now, "exp": now + 300,
        "preferred_username": user, "realm_access": {"roles": roles if roles is not None else ["akko-analyst"]},
    }
    claims.update(overrides)
    return claims


def sign(claims: dict, key=None, algorithm: str = "RS256") -> str:
    return jwt.encode(claims, key if key is not None else signing_key(), algorithm=algorithm)


@pytest.mark.parametrize("user,role", sorted(REALM_USERS.items()))
def test_issue_and_verify_every_realm_user(user: str, role: str) -> None:
    token = issue_token(user)
    assert verify_token(token) == Identity(user, [role])
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == jwks()["keys"][0]["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "http://127.0.0.1:8080/realms/akko"
    assert claims["aud"] == "trino" and claims["preferred_username"] == user
    assert claims["realm_access"]["roles"] == [role]
    assert 0 < claims["exp"] - time.time() <= 3600


def test_key_generated_once_owner_only(akko_home: Path) -> None:
    issue_token("carol")
    key_file = akko_home / "keys" / "jwt-rs256-private.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_bytes()
    issue_token("dave")
    assert key_file.read_bytes() == first


def test_repo_holds_no_private_key() -> None:
    repo = REALM_PATH.parent.parent
    for path in list((repo / "opa").rglob("*")) + list((repo / "keycloak").rglob("*")):
        if path.is_file():
            assert "PRIVATE KEY" not in path.read_text(errors="ignore"), path


def test_audience_per_client() -> None:
    token = issue_token("carol", audience="aden")
    assert verify_token(token, audience="aden").user == "carol"
    with pytest.raises(AccessDenied, match="audience"):
        verify_token(token)  # issued for aden, presented to trino
    with pytest.raises(AccessDenied, match="unknown audience"):
        issue_token("carol", audience="grafana")


def test_issuer_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKKO_OIDC_ISSUER", "https://keycloak.akko.local/realms/akko")
    token = issue_token("erin")
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == "https://keycloak.akko.local/realms/akko"
    assert verify_token(token).roles == {"akko-viewer"}


def test_unknown_user() -> None:
    with pytest.raises(AccessDenied, match="unknown user 'mallory'"):
        issue_token("mallory")
    with pytest.raises(AccessDenied, match="unknown user 'mallory'"):
        identity_for_user("mallory")
    with pytest.raises(AccessDenied, match="unknown user 'mallory'"):
        verify_token(sign(claims_for("mallory", ["akko-admin"])))


def test_user_without_role(tmp_path: Path) -> None:
    realm = json.loads(REALM_PATH.read_text())
    realm["users"].append({"username": "frank", "enabled": True, "realmRoles": ["offline_access"]})
    realm_path = tmp_path / "realm.json"
    realm_path.write_text(json.dumps(realm))
    with pytest.raises(AccessDenied, match="has no akko role"):
        identity_for_user("frank", realm_path=realm_path)
    with pytest.raises(AccessDenied, match="has no akko role"):
        issue_token("frank", realm_path=realm_path)
    with pytest.raises(AccessDenied, match="has no akko role"):
        verify_token(sign(claims_for("carol", ["offline_access", "default-roles-akko"])))
    with pytest.raises(AccessDenied, match="has no akko role"):
        verify_token(sign(claims_for("carol", [])))


def test_expired() -> None:
    now = int(time.time())
    with pytest.raises(AccessDenied, match="token expired"):
        verify_token(sign(claims_for(iat=now - 7200, exp=now - 3600)))


def test_wrong_signature() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(AccessDenied, match="signature is invalid"):
        verify_token(sign(claims_for(), key=other))
    token = issue_token("carol")
    head, _body, sig = token.split(".")
    forged_body = jwt.utils.base64url_encode(json.dumps(claims_for("carol", ["akko-admin"])).encode()).decode()
    with pytest.raises(AccessDenied, match="signature is invalid"):
        verify_token(f"{head}.{forged_body}.{sig}")


def test_wrong_issuer_and_audience() -> None:
    with pytest.raises(AccessDenied, match="issuer is wrong"):
        verify_token(sign(claims_for(iss="http://evil.example/realms/akko")))
    with pytest.raises(AccessDenied, match="audience is wrong"):
        verify_token(sign(claims_for(aud="superset")))


def test_alg_none_and_hs256_confusion() -> None:
    with pytest.raises(AccessDenied, match="algorithm is not allowed"):
        verify_token(jwt.encode(claims_for(), None, algorithm="none"))
    public_pem = signing_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # Classic confusion attack: HMAC-sign with the public key as the secret.
    import hashlib
    import hmac

    header = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(claims_for("carol", ["akko-admin"])).encode())
    signature = jwt.utils.base64url_encode(hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest())
    with pytest.raises(AccessDenied, match="algorithm is not allowed"):
        verify_token((header + b"." + payload + b"." + signature).decode())


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30."])
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(AccessDenied):
        verify_token(token)


def test_missing_claims() -> None:
    claims = claims_for()
    del claims["preferred_username"]
    with pytest.raises(AccessDenied, match="preferred_username"):
        verify_token(sign(claims))


def test_k8s_profile_needs_jwks_url(monkeypatch: pytest.MonkeyPatch) -> None:
    token = issue_token("carol")
    monkeypatch.setenv("AKKO_PROFILE", "k8s")
    with pytest.raises(AccessDenied, match="AKKO_OIDC_JWKS_URL"):
        verify_token(token)


def test_k8s_profile_verifies_against_jwks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real HTTP JWKS endpoint (as Keycloak serves it) on loopback."""
    body = json.dumps(jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        token = issue_token("dave")
        monkeypatch.setenv("AKKO_PROFILE", "k8s")
        monkeypatch.setenv("AKKO_OIDC_JWKS_URL", f"http://127.0.0.1:{server.server_address[1]}/certs")
        assert verify_token(token) == Identity("dave", ["akko-user"])
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(AccessDenied):
            verify_token(sign(claims_for(), key=other))
    finally:
        server.shutdown()
        server.server_close()
