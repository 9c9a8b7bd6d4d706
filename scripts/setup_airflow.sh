#!/usr/bin/env bash
# Create .venv-airflow for the Airflow compatibility DAG. Airflow's pins fight the core
# virtualenv's, so it lives apart and talks to Dagster only over GraphQL (see shared DESIGN).
# Idempotent: a venv that already has the pinned versions is kept.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AKKO_AIRFLOW_VENV:-$REPO_ROOT/.venv-airflow}"
PYTHON="${PYTHON:-python3.11}"
REQUIREMENTS="$REPO_ROOT/airflow/requirements.txt"

installed_ok() {
  [ -x "$VENV/bin/airflow" ] || return 1
  "$VENV/bin/python" - "$REQUIREMENTS" <<'PY'
import re
import sys
from importlib.metadata import PackageNotFoundError, version

bad = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
    if not m:
        continue
    name, want = re.sub(r"\[.*\]", "", m.group(1)), m.group(2)
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have != want:
        bad.append(f"{name}: want {want}, have {have}")
if bad:
    print("airflow venv out of date: " + "; ".join(bad))
sys.exit(1 if bad else 0)
PY
}

if installed_ok; then
  echo "airflow venv ok: $VENV"
  exit 0
fi

echo "creating airflow venv: $VENV"
started=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
installed_ok || { echo "airflow venv: pinned versions not installed, see pip output above" >&2; exit 1; }
"$VENV/bin/pip" check >/dev/null || { "$VENV/bin/pip" check >&2; echo "airflow venv: conflicting dependencies (pip check above)" >&2; exit 1; }
echo "airflow venv ready in $(( $(date +%s) - started )) s: $VENV"
