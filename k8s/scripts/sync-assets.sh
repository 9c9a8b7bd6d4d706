#!/usr/bin/env bash
# Copies what the manifests need from the rest of the repository into k8s/base/generated/
# (git-ignored), because kustomize only reads files inside its own root:
#   opa/**/*.rego (minus *_test.rego), opa/data/*.json -> generated/opa-bundle.tar.gz (an OPA bundle)
#   keycloak/realm-akko.json                          -> generated/realm-akko.json and
#                                                        generated/trino-groups.txt (roles per user)
#   airflow/dags/akko_banking_fraud_demo.py           -> generated/akko_banking_fraud_demo.py
#   akko_assets/observability/tracing.py              -> generated/akko_tracing.py (the DAG's
#                                                        trace module; Airflow has no akko_assets)
#   TRINO_UDFS_SQL (from `akko trino-udfs --out`)     -> generated/trino-udfs.sql
#   SUPERSET_BUNDLE (dashboard import zip)            -> generated/superset-bundle.zip
#
# usage: REPO_ROOT=... TRINO_UDFS_SQL=FILE SUPERSET_BUNDLE=FILE sync-assets.sh [K8S_DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${REPO_ROOT:-$(cd "$here/../.." && pwd)}"
k8s="${1:-$here/..}"
gen="$k8s/base/generated"

need() {
  [[ -e "$1" ]] || { echo "sync-assets: $1 is missing: $2" >&2; exit 1; }
}
need "$repo/opa" "the OPA policies (governance) must exist before deploying"
need "$repo/keycloak/realm-akko.json" "the Keycloak realm (governance) must exist before deploying"
need "$repo/airflow/dags/akko_banking_fraud_demo.py" "the compatibility DAG must exist before deploying"
need "$repo/akko_assets/observability/tracing.py" "the tracing module (observability) must exist before deploying"
need "${TRINO_UDFS_SQL:-}" "set TRINO_UDFS_SQL to the file written by 'akko trino-udfs --out FILE'"
need "${SUPERSET_BUNDLE:-}" "set SUPERSET_BUNDLE to the dashboard bundle zip built from superset_assets/"

rm -rf "$gen"
mkdir -p "$gen"

# OPA bundle: policies keep their relative paths, tests (*_test.rego) stay out of the server.
# OPA bundles only load files named data.json, so opa/data/*.json (each {"akko": {...}}) are
# deep-merged into one data.json at the bundle root: the same merge the in-process evaluator does.
# Written with Python's tarfile (fixed mtime/owner, gzip without timestamp) so the archive, and
# the ConfigMap hash, only change when a policy does, and so GNU and BSD tar differences do not matter.
python3 - "$repo/opa" "$gen/opa-bundle.tar.gz" <<'PY'
import gzip, io, json, pathlib, sys, tarfile

root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
policies = sorted(p for p in root.rglob("*.rego") if not p.name.endswith("_test.rego"))
if not policies:
    sys.exit(f"sync-assets: no .rego policy in {root}")

def merge(into, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value

data = {}
for path in sorted((root / "data").glob("*.json")):
    merge(data, json.loads(path.read_text()))
files = {p.relative_to(root).as_posix(): p.read_bytes() for p in policies}
files["data.json"] = json.dumps(data, indent=1, sort_keys=True).encode()
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for name, content in sorted(files.items()):
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(content), 0o644
        tar.addfile(info, io.BytesIO(content))
out.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
PY

# Trino learns a user's akko roles from a group file (group:user,user) generated from the realm,
# so OPA sees them in input.context.identity.groups, exactly as Keycloak assigns them.
python3 - "$repo/keycloak/realm-akko.json" "$gen/trino-groups.txt" <<'PY'
import json, pathlib, sys

realm = json.loads(pathlib.Path(sys.argv[1]).read_text())
groups = {}
for user in realm.get("users", []):
    for role in user.get("realmRoles", []):
        if role.startswith("akko-"):
            groups.setdefault(role, []).append(user["username"])
lines = [f"{role}:{','.join(sorted(users))}" for role, users in sorted(groups.items())]
if not lines:
    sys.exit(f"sync-assets: {sys.argv[1]} assigns no akko-* realm role to any user")
pathlib.Path(sys.argv[2]).write_text("\n".join(lines) + "\n")
PY

cp "$repo/keycloak/realm-akko.json" "$gen/realm-akko.json"
cp "$repo/airflow/dags/akko_banking_fraud_demo.py" "$gen/akko_banking_fraud_demo.py"
cp "$repo/akko_assets/observability/tracing.py" "$gen/akko_tracing.py"
cp "$TRINO_UDFS_SQL" "$gen/trino-udfs.sql"
cp "$SUPERSET_BUNDLE" "$gen/superset-bundle.zip"
echo "sync-assets: wrote $(ls "$gen" | wc -l) files to $gen"
