"""Superset settings for the k8s profile. Every secret comes from the environment (Secret
superset-credentials / postgres-credentials), never from this file."""

import os

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
SQLALCHEMY_DATABASE_URI = (
    "postgresql+psycopg2://superset:{pw}@postgres:5432/superset".format(pw=os.environ["SUPERSET_DB_PASSWORD"])
)
# Bearer-token API calls must not run as anonymous (see the project's notes on PUBLIC_ROLE_LIKE).
PUBLIC_ROLE_LIKE = None
WTF_CSRF_ENABLED = True
# Cache keys in the metadata DB so POST /api/v1/cachekey/invalidate (sent by the run-status
# sensor after a successful run) really clears the chart data cache.
STORE_CACHE_KEYS_IN_METADATA_DB = True
CACHE_CONFIG = {
    "CACHE_TYPE": "SupersetMetastoreCache",
    "CACHE_KEY_PREFIX": "akko_",
    "CACHE_DEFAULT_TIMEOUT": 86400,
}
DATA_CACHE_CONFIG = CACHE_CONFIG
FEATURE_FLAGS = {"DASHBOARD_RBAC": True}
