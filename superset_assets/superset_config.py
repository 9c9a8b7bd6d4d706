"""Superset configuration for the local profile (loaded via SUPERSET_CONFIG_PATH).

Everything per-installation lives under AKKO_HOME/superset: the SQLite metadata DB, the data
cache and secrets.json (SECRET_KEY, admin password) written by make_secrets.py at setup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
_HOME = Path(os.environ.get("AKKO_HOME", "").strip() or _REPO_ROOT / ".akko").expanduser().resolve()
SUPERSET_HOME = _HOME / "superset"
_SECRETS = SUPERSET_HOME / "secrets.json"
if not _SECRETS.exists():
    raise RuntimeError(
        f"{_SECRETS} is missing: run scripts/setup_superset.sh (or akko superset up) to generate it"
    )

SECRET_KEY = json.loads(_SECRETS.read_text())["secret_key"]
SQLALCHEMY_DATABASE_URI = f"sqlite:///{SUPERSET_HOME / 'superset.db'}?check_same_thread=false"

# Cache invalidation (POST /api/v1/cachekey/invalidate) deletes keys recorded in the metadata
# DB from CACHE_CONFIG's store, so the data cache must live in that same store and keys must be
# recorded; otherwise the endpoint answers 201 and clears nothing.
STORE_CACHE_KEYS_IN_METADATA_DB = True
_CACHE = {
    "CACHE_TYPE": "FileSystemCache",
    "CACHE_DIR": str(SUPERSET_HOME / "cache"),
    "CACHE_DEFAULT_TIMEOUT": 24 * 3600,
    "CACHE_KEY_PREFIX": "akko_",
    "CACHE_THRESHOLD": 5000,
}
CACHE_CONFIG = dict(_CACHE)
DATA_CACHE_CONFIG = dict(_CACHE)
FILTER_STATE_CACHE_CONFIG = dict(_CACHE, CACHE_KEY_PREFIX="akko_filter_")
EXPLORE_FORM_DATA_CACHE_CONFIG = dict(_CACHE, CACHE_KEY_PREFIX="akko_explore_")

# Deny by default: no anonymous access (a PUBLIC_ROLE_LIKE role would also make bearer-token
# API calls run as anonymous).
PUBLIC_ROLE_LIKE = None
AUTH_ROLE_PUBLIC = "Public"

FEATURE_FLAGS = {"ALERT_REPORTS": False}
SUPERSET_WEBSERVER_TIMEOUT = 120
ROW_LIMIT = 50_000
LOG_LEVEL = "WARNING"
