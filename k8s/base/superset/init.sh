#!/bin/sh
# Idempotent Superset initialisation: schema, admin user, roles, then the AKKO Banking Fraud
# dashboard bundle (built from superset_assets/ by deploy.sh) imported with overwrite.
set -eu
superset db upgrade
superset fab create-admin --username admin --firstname AKKO --lastname Admin \
  --email admin@akko.local --password "$SUPERSET_ADMIN_PASSWORD" || echo "admin exists"
superset init
superset import-dashboards --path /assets/akko-banking-fraud.zip --username admin
echo "superset-init: done"
