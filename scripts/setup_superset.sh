#!/usr/bin/env bash
# Create .venv-superset (Superset's pins fight the core virtualenv's, see shared NOTES) and the
# per-installation secrets. Idempotent: a venv that already has the pinned versions is kept.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AKKO_SUPERSET_VENV:-$REPO_ROOT/.venv-superset}"
PYTHON="${PYTHON:-python3.11}"

# Superset 6.1.0's wheel metadata is incomplete: rich and cachetools are missing (without
# cachetools every DB connection fails with "Could not load database driver"), and the Flask
# family must follow the upstream lock (flask-caching 2.5 breaks memoized cache keys).
# duckdb must equal the core venv's version: an older DuckDB cannot open a newer file.
PINS=(
  "apache-superset==6.1.0"
  "rich"
  "cachetools"
  "Flask==2.3.3"
  "Flask-AppBuilder==5.0.2"
  "Flask-SQLAlchemy==2.5.1"
  "Werkzeug==3.1.3"
  "flask-caching==2.3.1"
  "duckdb==1.5.5"
  "duckdb-engine"
  "psycopg2-binary"
)

installed_ok() {
  [ -x "$VENV/bin/superset" ] || return 1
  "$VENV/bin/python" - <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
want = {"apache-superset": "6.1.0", "flask": "2.3.3", "flask-appbuilder": "5.0.2",
        "flask-sqlalchemy": "2.5.1", "werkzeug": "3.1.3", "flask-caching": "2.3.1",
        "duckdb": "1.5.5"}
try:
    bad = {k: version(k) for k, v in want.items() if version(k) != v}
    for extra in ("rich", "cachetools", "duckdb-engine", "psycopg2-binary"):
        version(extra)
except PackageNotFoundError as exc:
    print(f"missing {exc}")
    sys.exit(1)
sys.exit(1 if bad else 0)
PY
}

if installed_ok; then
  echo "superset venv ok: $VENV"
else
  echo "creating superset venv: $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "${PINS[@]}"
  installed_ok || { echo "superset venv: pinned versions not installed, see pip output above" >&2; exit 1; }
fi

# Secrets live in AKKO_HOME (never in the repo); generated once, kept on re-runs.
"$VENV/bin/python" "$REPO_ROOT/superset_assets/make_secrets.py" "${AKKO_HOME:-$REPO_ROOT/.akko}"
