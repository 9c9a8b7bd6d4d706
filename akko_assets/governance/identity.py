"""Who is asking: Keycloak-shaped JWTs issued and verified locally, or verified against Keycloak.

The realm export (keycloak/realm-akko.json) is the one source of truth for users and their realm
roles. Locally the platform signs tokens itself with an RS256 key pair kept in $AKKO_HOME/keys
(generated on first use, never committed); in the k8s profile Keycloak issues them and they are
verified against its JWKS (AKKO_OIDC_JWKS_URL). Either way the result is an `Identity`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from akko_assets.governance.errors import AccessDenied
from akko_assets.settings import REPO_ROOT, load_settings

REALM_PATH = REPO_ROOT / "keycloak" / "realm-akko.json"
AKKO_ROLES = ("akko-admin", "akko-engineer", "akko-analyst", "akko-user", "akko-viewer")
DEFAULT_ISSUER = "http://127.0.0.1:8080/realms/akko"
# The governed executor stands in for Trino locally, so CLI tokens are issued for the trino client.
DEFAULT_AUDIENCE = "trino"
TOKEN_TTL_SECONDS = 3600
PRIVATE_KEY_FILE = "jwt-rs256-private.pem"


@dataclass(frozen=True)
class Identity:
    """An authenticated user and the akko realm roles it holds (other roles are dropped).

    `token` is the verified bearer token it came from, if any: engines that authenticate users
    themselves (Trino over HTTPS) get the token, not just the name."""

    user: str
    roles: frozenset[str] = field(default_factory=frozenset)
    token: str | None = field(default=None, compare=False, repr=False)

    def __init__(self, user: str, roles: Iterable[str] = (), token: str | None = None) -> None:
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "roles", frozenset(r for r in roles if r in AKKO_ROLES))
        object.__setattr__(self, "token", token)


@dataclass(frozen=True)
class Realm:
    name: str
    users: dict[str, tuple[str, ...]]  # username -> realm roles
    clients: tuple[str, ...]


@lru_cache(maxsize=4)
def _load_realm_cached(path: str, mtime: float) -> Realm:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AccessDenied(f"cannot read the Keycloak realm {path}: {exc}; restore keycloak/realm-akko.json") from None
    users = {u["username"]: tuple(u.get("realmRoles", ())) for u in doc.get("users", []) if u.get("enabled", True)}
    clients = tuple(c["clientId"] for c in doc.get("clients", []))
    return Realm(name=doc.get("realm", ""), users=users, clients=clients)


def load_realm(path: Path | None = None) -> Realm:
    path = Path(path or REALM_PATH)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        raise AccessDenied(f"Keycloak realm file {path} is missing; restore keycloak/realm-akko.json") from None
    return _load_realm_cached(str(path), mtime)


def issuer() -> str:
    return os.environ.get("AKKO_OIDC_ISSUER", "").strip() or DEFAULT_ISSUER


def identity_for_user(user: str, realm_path: Path | None = None) -> Identity:
    """The realm user `user` with its akko roles; unknown users and users without a role are denied."""
    realm = load_realm(realm_path)
    if user not in realm.users:
        raise AccessDenied(f"unknown user {user!r}: not in the Keycloak realm {realm.name!r}")
    identity = Identity(user, realm.users[user])
    if not identity.roles:
        raise AccessDenied(f"user {user!r} has no akko role: ask an admin for one of {', '.join(AKKO_ROLES)}")
    return identity


# --- keys ---------------------------------------------------------------------------------------


def keys_dir() -> Path:
    return load_settings().home / "keys"


def _load_or_create_private_key(directory: Path) -> rsa.RSAPrivateKey:
    path = directory / PRIVATE_KEY_FILE
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Write-then-rename with owner-only permissions: a half-written or world-readable key never exists.
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AccessDenied(f"{path} is not an RSA private key: delete it to generate a new one")
    return key


def signing_key(directory: Path | None = None) -> rsa.RSAPrivateKey:
    return _load_or_create_private_key(Path(directory or keys_dir()))


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, the `kid` Keycloak uses too."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def jwks(directory: Path | None = None) -> dict[str, Any]:
    """The public key set of the local issuer (what Keycloak serves at .../protocol/openid-connect/certs)."""
    public = signing_key(directory).public_key()
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    jwk.update({"kid": _thumbprint(jwk), "use": "sig", "alg": "RS256"})
    return {"keys": [jwk]}


# --- tokens -------------------------------------------------------------------------------------


def issue_token(
    user: str,
    audience: str = DEFAULT_AUDIENCE,
    ttl_seconds: int = TOKEN_TTL_SECONDS,
    realm_path: Path | None = None,
    keys_directory: Path | None = None,
) -> str:
    """A Keycloak-shaped access token for a realm user, signed with the local RS256 key."""
    identity = identity_for_user(user, realm_path)
    realm = load_realm(realm_path)
    if audience not in realm.clients:
        raise AccessDenied(f"unknown audience {audience!r}: use one of the realm clients {', '.join(realm.clients)}")
    key = signing_key(keys_directory)
    now = int(time.time())
    claims = {
        "iss": issuer(),
        "aud": audience,
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{issuer()}/users/{user}")),
        "typ": "Bearer",
        "azp": audience,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "preferred_username": identity.user,
        "realm_access": {"roles": sorted(realm.users[user])},
        "scope": "openid profile email",
    }
    public = key.public_key()
    kid = _thumbprint(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public)))
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def verify_token(
    token: str,
    audience: str | tuple[str, ...] = DEFAULT_AUDIENCE,
    realm_path: Path | None = None,
    keys_directory: Path | None = None,
) -> Identity:
    """Check signature (RS256 only), expiry, issuer and audience; return the caller's identity."""
    profile = load_settings().profile
    try:
        if profile == "k8s":
            key = _jwks_signing_key(token)
        else:
            key = signing_key(keys_directory).public_key()
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],  # never "none", never HS256 with the public key as secret
            audience=list(audience) if isinstance(audience, tuple) else audience,  # any of them
            issuer=issuer(),
            options={"require": ["exp", "iat", "iss", "aud", "preferred_username"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError:
        raise AccessDenied("token expired: get a new one with `akko token --user NAME`") from None
    except jwt.InvalidAudienceError:
        wanted = " or ".join(repr(a) for a in audience) if isinstance(audience, tuple) else repr(audience)
        raise AccessDenied(f"token audience is wrong: expected {wanted}") from None
    except jwt.InvalidIssuerError:
        raise AccessDenied(f"token issuer is wrong: expected {issuer()!r} (AKKO_OIDC_ISSUER)") from None
    except jwt.InvalidSignatureError:
        raise AccessDenied("token signature is invalid: it was not signed by this platform's key") from None
    except jwt.InvalidAlgorithmError:
        raise AccessDenied("token algorithm is not allowed: only RS256 tokens are accepted") from None
    except jwt.PyJWKClientError as exc:
        raise AccessDenied(f"cannot get the signing key from AKKO_OIDC_JWKS_URL: {exc}") from None
    except jwt.PyJWTError as exc:
        raise AccessDenied(f"token rejected: {exc}") from None

    user = claims["preferred_username"]
    roles = (claims.get("realm_access") or {}).get("roles") or []
    if not isinstance(user, str) or not isinstance(roles, list):
        raise AccessDenied("token rejected: preferred_username or realm_access.roles has the wrong type")
    if profile != "k8s":
        # Locally the realm file is the user directory: a user removed from it loses access even
        # with a token that has not expired yet.
        realm = load_realm(realm_path)
        if user not in realm.users:
            raise AccessDenied(f"unknown user {user!r}: not in the Keycloak realm {realm.name!r}")
    identity = Identity(user, roles, token=token)
    if not identity.roles:
        raise AccessDenied(f"user {user!r} has no akko role: ask an admin for one of {', '.join(AKKO_ROLES)}")
    return identity


@lru_cache(maxsize=2)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300)


def _jwks_signing_key(token: str) -> Any:
    """k8s profile: the key Keycloak signed this token with, from its JWKS endpoint."""
    url = os.environ.get("AKKO_OIDC_JWKS_URL", "").strip()
    if not url:
        raise AccessDenied(
            "AKKO_PROFILE=k8s needs AKKO_OIDC_JWKS_URL, e.g. "
            "http://keycloak:8080/realms/akko/protocol/openid-connect/certs"
        )
    return _jwks_client(url).get_signing_key_from_jwt(token).key
