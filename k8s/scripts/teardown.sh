#!/usr/bin/env bash
# Deletes the k3d cluster (and with it every volume). Keeps the generated secrets unless
# --purge is given, because they are only useful for the same cluster's data.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cluster="${AKKO_K3D_CLUSTER:-akko}"
command -v k3d >/dev/null || { echo "teardown: k3d not found on PATH" >&2; exit 1; }
if k3d cluster get "$cluster" >/dev/null 2>&1; then
  k3d cluster delete "$cluster"
else
  echo "teardown: no k3d cluster named $cluster"
fi
if [[ "${1:-}" == "--purge" ]]; then
  rm -rf "$here/../overlays/k3d/secrets" "$here/../base/generated"
  echo "teardown: removed generated secrets and synced assets"
fi
