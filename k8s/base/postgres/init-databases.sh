#!/bin/bash
# Runs once, on an empty data directory (docker-entrypoint-initdb.d). One role and one
# database per service, each role owning only its database: a leaked MLflow password does not
# open the source data. Passwords come from the Secret postgres-credentials.
set -euo pipefail

create_db() {
  local db="$1" role="$2" password="$3"
  if [[ -z "$password" ]]; then
    echo "init-databases: the password for role $role is empty: rerun k8s/scripts/deploy.sh to regenerate secrets" >&2
    exit 1
  fi
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$role" -v db="$db" -v pw="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"role";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}

create_db akko      akko      "$AKKO_DB_PASSWORD"
create_db dagster   dagster   "$DAGSTER_DB_PASSWORD"
create_db mlflow    mlflow    "$MLFLOW_DB_PASSWORD"
create_db polaris   polaris   "$POLARIS_DB_PASSWORD"
create_db superset  superset  "$SUPERSET_DB_PASSWORD"
create_db airflow   airflow   "$AIRFLOW_DB_PASSWORD"
create_db keycloak  keycloak  "$KEYCLOAK_DB_PASSWORD"
