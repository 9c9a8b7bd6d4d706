#!/usr/bin/env bash
# Writes the k3d overlay's secret env files with fresh random values (openssl), once.
# Existing files are kept so a redeploy does not lock services out of their own databases;
# pass --force to regenerate (only on a fresh cluster: PostgreSQL keeps the old passwords).
#
# usage: gen-secrets.sh [--force] [OUT_DIR]   (default OUT_DIR: k8s/overlays/k3d/secrets)
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; shift; fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../overlays/k3d/secrets}"

command -v openssl >/dev/null || { echo "gen-secrets: openssl not found: install it (apt-get install openssl)" >&2; exit 1; }

if [[ -f "$out/postgres.env" && $force -eq 0 ]]; then
  echo "gen-secrets: $out already has secrets (use --force on a fresh cluster to regenerate)"
  exit 0
fi
mkdir -p "$out"
chmod 700 "$out"
umask 077

rand() { openssl rand -hex "${1:-24}"; }
# Fernet keys are 32 random bytes, URL-safe base64.
fernet() { openssl rand -base64 32 | tr '+/' '-_'; }

akko_db="$(rand)"; dagster_db="$(rand)"
s3_key="akko$(rand 8)"; s3_secret="$(rand)"
polaris_id="$(rand 8)"; polaris_secret="$(rand)"
superset_admin="$(rand 12)"; dagster_client="$(rand)"

cat > "$out/postgres.env" <<ENV
POSTGRES_PASSWORD=$(rand)
AKKO_DB_PASSWORD=$akko_db
DAGSTER_DB_PASSWORD=$dagster_db
MLFLOW_DB_PASSWORD=$(rand)
POLARIS_DB_PASSWORD=$(rand)
SUPERSET_DB_PASSWORD=$(rand)
AIRFLOW_DB_PASSWORD=$(rand)
KEYCLOAK_DB_PASSWORD=$(rand)
ENV
cat > "$out/minio.env" <<ENV
MINIO_ROOT_USER=root$(rand 6)
MINIO_ROOT_PASSWORD=$(rand)
S3_ACCESS_KEY=$s3_key
S3_SECRET_KEY=$s3_secret
ENV
cat > "$out/polaris.env" <<ENV
POLARIS_ROOT_CLIENT_ID=root$(rand 6)
POLARIS_ROOT_CLIENT_SECRET=$(rand)
POLARIS_CLIENT_ID=$polaris_id
POLARIS_CLIENT_SECRET=$polaris_secret
ENV
cat > "$out/keycloak.env" <<ENV
KC_BOOTSTRAP_ADMIN_USERNAME=admin
KC_BOOTSTRAP_ADMIN_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_ALICE_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_BOB_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_CAROL_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_DAVE_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_ERIN_PASSWORD=$(rand 12)
AKKO_KEYCLOAK_TRINO_CLIENT_SECRET=$(rand)
AKKO_KEYCLOAK_SUPERSET_CLIENT_SECRET=$(rand)
AKKO_KEYCLOAK_ADEN_CLIENT_SECRET=$(rand)
AKKO_KEYCLOAK_DAGSTER_CLIENT_SECRET=$dagster_client
ENV
cat > "$out/superset.env" <<ENV
SUPERSET_SECRET_KEY=$(rand 32)
SUPERSET_ADMIN_PASSWORD=$superset_admin
ENV
cat > "$out/grafana.env" <<ENV
GF_SECURITY_ADMIN_PASSWORD=$(rand 12)
ENV
cat > "$out/airflow.env" <<ENV
AIRFLOW_API_SECRET_KEY=$(rand 32)
AIRFLOW_JWT_SECRET=$(rand 32)
AIRFLOW_FERNET_KEY=$(fernet)
ENV
# Environment of the Dagster code location and of every run pod (Secret akko-secrets).
cat > "$out/akko.env" <<ENV
PGPASSWORD=$akko_db
AWS_ACCESS_KEY_ID=$s3_key
AWS_SECRET_ACCESS_KEY=$s3_secret
AKKO_POLARIS_CLIENT_ID=$polaris_id
AKKO_POLARIS_CLIENT_SECRET=$polaris_secret
AKKO_ICEBERG_CREDENTIAL=$polaris_id:$polaris_secret
AKKO_SUPERSET_USER=admin
AKKO_SUPERSET_PASSWORD=$superset_admin
AKKO_OIDC_CLIENT_SECRET=$dagster_client
ENV
cat > "$out/dagster-postgresql.env" <<ENV
postgresql-password=$dagster_db
ENV
echo "gen-secrets: wrote $(ls "$out" | wc -l) env files to $out (git-ignored)"
