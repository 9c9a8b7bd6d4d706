"""Polaris bootstrap: catalog `akko` on s3://akko-warehouse/, principal `akko-engine`, grants.

Runs as a Kubernetes Job (python:3.11-slim, standard library only). Idempotent: an entity
that already exists (HTTP 409) is left as it is, so the Job can be rerun after a failure.
The engines (Trino, Spark Connect, the Dagster code) use `akko-engine`, never the root
principal; its client id/secret are the ones deploy.sh generated (Secret polaris-credentials).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ.get("POLARIS_URL", "http://polaris:8181")
REALM = os.environ.get("POLARIS_REALM", "POLARIS")
CATALOG = os.environ.get("POLARIS_CATALOG", "akko")
LOCATION = os.environ.get("POLARIS_LOCATION", "s3://akko-warehouse/")
S3_ENDPOINT = os.environ.get("AKKO_S3_ENDPOINT", "http://minio:9000")
PRINCIPAL = "akko-engine"
PRINCIPAL_ROLE = "akko_engine"
CATALOG_ROLE = "akko_rw"


def _request(method: str, path: str, token: str | None = None, body: dict | None = None,
             form: dict | None = None) -> tuple[int, dict]:
    headers = {"Polaris-Realm": REALM, "Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else {}
        except ValueError:
            return exc.code, {"raw": raw.decode(errors="replace")}


def _ok(step: str, status: int, payload: dict, allow_conflict: bool = True) -> None:
    if 200 <= status < 300 or (allow_conflict and status == 409):
        print(f"{step}: {'exists' if status == 409 else 'ok'}")
        return
    sys.exit(f"polaris-bootstrap: {step} failed with HTTP {status}: {payload}")


def wait_for_token() -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": os.environ["POLARIS_ROOT_CLIENT_ID"],
        "client_secret": os.environ["POLARIS_ROOT_CLIENT_SECRET"],
        "scope": "PRINCIPAL_ROLE:ALL",
    }
    deadline = time.monotonic() + 600
    while True:
        try:
            status, payload = _request("POST", "/api/catalog/v1/oauth/tokens", form=form)
            if status == 200:
                return payload["access_token"]
            reason = f"HTTP {status}: {payload}"
        except OSError as exc:  # service not up yet
            reason = str(exc)
        if time.monotonic() > deadline:
            sys.exit(f"polaris-bootstrap: no root token from {BASE} after 10 min ({reason}); "
                     "check the polaris-admin-bootstrap Job and the polaris pod logs")
        print(f"waiting for Polaris ({reason})")
        time.sleep(5)


def main() -> None:
    token = wait_for_token()
    mgmt = "/api/management/v1"
    catalog = {
        "catalog": {
            "name": CATALOG,
            "type": "INTERNAL",
            "readOnly": False,
            "properties": {"default-base-location": LOCATION},
            "storageConfigInfo": {
                "storageType": "S3",
                "allowedLocations": [LOCATION],
                "endpoint": S3_ENDPOINT,
                "endpointInternal": S3_ENDPOINT,
                "pathStyleAccess": True,
            },
        }
    }
    _ok("catalog", *_request("POST", f"{mgmt}/catalogs", token, catalog))
    _ok("principal", *_request("POST", f"{mgmt}/principals", token, {"principal": {"name": PRINCIPAL}}))
    # Set the principal's credentials to the generated ones, so the engines' Secret is the
    # source of truth (Polaris would otherwise invent a secret that only this Job sees).
    creds = {"clientId": os.environ["POLARIS_CLIENT_ID"], "clientSecret": os.environ["POLARIS_CLIENT_SECRET"]}
    _ok("principal credentials", *_request("POST", f"{mgmt}/principals/{PRINCIPAL}/reset", token, creds),
        allow_conflict=False)
    _ok("principal role", *_request("POST", f"{mgmt}/principal-roles", token,
                                    {"principalRole": {"name": PRINCIPAL_ROLE}}))
    _ok("assign principal role", *_request("PUT", f"{mgmt}/principals/{PRINCIPAL}/principal-roles", token,
                                           {"principalRole": {"name": PRINCIPAL_ROLE}}))
    _ok("catalog role", *_request("POST", f"{mgmt}/catalogs/{CATALOG}/catalog-roles", token,
                                  {"catalogRole": {"name": CATALOG_ROLE}}))
    # CATALOG_MANAGE_CONTENT: create/alter/drop namespaces and tables, read and write data.
    _ok("grant", *_request("PUT", f"{mgmt}/catalogs/{CATALOG}/catalog-roles/{CATALOG_ROLE}/grants", token,
                           {"grant": {"type": "catalog", "privilege": "CATALOG_MANAGE_CONTENT"}}))
    _ok("assign catalog role", *_request("PUT", f"{mgmt}/principal-roles/{PRINCIPAL_ROLE}/catalog-roles/{CATALOG}",
                                         token, {"catalogRole": {"name": CATALOG_ROLE}}))
    print("polaris-bootstrap: done")


if __name__ == "__main__":
    main()
