#!/usr/bin/env bash
# One command from an empty laptop (Docker running) to the AKKO platform on k3d:
#   k3d cluster -> dev secrets -> images -> synced assets -> kubectl apply -k -> wait.
# Rerunnable: existing cluster, secrets and completed Jobs are kept.
#
# Needs: docker, k3d (v5), kubectl, openssl, python3 and the project installed
# (`pip install -e .` provides the `akko` CLI used to generate the Trino UDF SQL and the
# Superset bundle).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
k8s="$(cd "$here/.." && pwd)"
repo="$(cd "$k8s/.." && pwd)"
cluster="${AKKO_K3D_CLUSTER:-akko}"
k3s_image="${AKKO_K3S_IMAGE:-rancher/k3s:v1.32.5-k3s1}"
ns=akko

for tool in docker k3d kubectl openssl akko; do
  command -v "$tool" >/dev/null || { echo "deploy: '$tool' not found on PATH: install it first (see k8s/README.md)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "deploy: the Docker engine is not running: start Docker Desktop or dockerd" >&2; exit 1; }

step() { printf '\n== %s\n' "$*"; }

step "cluster $cluster"
if ! k3d cluster get "$cluster" >/dev/null 2>&1; then
  # Host ports -> fixed NodePorts of the k3d overlay (overlays/k3d/nodeports.yaml).
  k3d cluster create "$cluster" --image "$k3s_image" --agents 0 \
    -p "3000:30300@server:0" \
    -p "8088:30088@server:0" \
    -p "8080:30080@server:0" \
    -p "3001:30030@server:0" \
    -p "8501:30501@server:0" \
    --k3s-arg "--disable=traefik@server:0" \
    --wait
fi
kubectl config use-context "k3d-$cluster" >/dev/null

step "secrets (git-ignored: k8s/overlays/k3d/secrets/)"
"$here/gen-secrets.sh"

step "images"
version="$(python3 -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1],"rb"))["project"]["version"])' "$repo/pyproject.toml")"
docker build -t "akko/akko-dagster:$version" -f "$k8s/images/akko/Dockerfile" "$repo"
docker build -t akko/spark-connect:3.5.6-iceberg1.9.2 "$k8s/images/spark-connect"
docker build -t akko/mlflow:3.17.2 "$k8s/images/mlflow"
docker build -t akko/superset:5.0.0 "$k8s/images/superset"
docker build -t akko/airflow:3.3.2 "$k8s/images/airflow"
k3d image import -c "$cluster" "akko/akko-dagster:$version" akko/spark-connect:3.5.6-iceberg1.9.2 \
  akko/mlflow:3.17.2 akko/superset:5.0.0 akko/airflow:3.3.2

step "assets from opa/, keycloak/, airflow/, trino_udfs/, superset_assets/"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The UDFs embed the production fraud model: train it once with the local profile (make demo).
# They are stored in Trino's function catalog udf.akko (base/trino/coordinator.properties).
akko trino-udfs --catalog udf --schema akko --out "$work/trino-udfs.sql" || {
  echo "deploy: 'akko trino-udfs' failed: it needs a production model (run 'make demo' once locally)" >&2; exit 1; }
akko superset-bundle --profile k8s --out "$work/superset-bundle.zip"
REPO_ROOT="$repo" TRINO_UDFS_SQL="$work/trino-udfs.sql" SUPERSET_BUNDLE="$work/superset-bundle.zip" \
  "$here/sync-assets.sh" "$k8s"

step "apply"
kubectl apply -k "$k8s/overlays/k3d"

step "wait for services (first start pulls ~6 GB of images: allow 10-20 min)"
kubectl -n "$ns" rollout status statefulset/postgres --timeout=15m
kubectl -n "$ns" wait --for=condition=complete job/minio-init --timeout=15m
kubectl -n "$ns" wait --for=condition=complete job/polaris-admin-bootstrap --timeout=15m
for d in minio polaris opa keycloak mlflow tempo grafana trino-coordinator trino-worker \
         spark-connect superset dagster-user-code dagster-webserver dagster-daemon airflow aden; do
  kubectl -n "$ns" rollout status "deployment/$d" --timeout=20m
done
kubectl -n "$ns" wait --for=condition=complete job/polaris-bootstrap job/trino-udfs job/superset-init --timeout=15m

cat <<MSG

AKKO is up on k3d cluster '$cluster':
  Dagster   http://localhost:3000   (Materialize all, or launch job banking_fraud_demo)
  Superset  http://localhost:8088   (user admin, password: grep SUPERSET_ADMIN_PASSWORD k8s/overlays/k3d/secrets/superset.env)
  Trino     http://localhost:8080   (trino --server http://localhost:8080 --user alice)
  Grafana   http://localhost:3001   (Explore -> Tempo; admin password in secrets/grafana.env)
  ADEN      http://localhost:8501   (paste a Keycloak access token of a realm user)
Other services: kubectl -n $ns port-forward svc/<name> <port> (see k8s/README.md).
MSG
