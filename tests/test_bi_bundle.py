"""Dashboard bundle generation, serving-file connection rules, and errors without a server."""

from __future__ import annotations

import io
import json
import runpy
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest
import yaml
from test_bi_serving import make_source, mask_card_pan

from akko_assets.bi import server
from akko_assets.bi.bundle import (
    EXPORT_VERSION,
    build_bundle,
    load_spec,
    stable_uuid,
    sub_bundle,
    with_dataset_ids,
)
from akko_assets.bi.provision import SupersetUnreachableError, import_dashboard, invalidate_cache
from akko_assets.bi.serving import publish_serving_db


def _docs(bundle: bytes) -> dict[str, dict]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n.split("/", 1)[1]: yaml.safe_load(zf.read(n)) for n in zf.namelist()}


@pytest.fixture
def bundle(tmp_path: Path) -> bytes:
    return build_bundle(tmp_path / "b.zip", tmp_path / "serving" / "superset.duckdb").path.read_bytes()


def test_bundle_is_deterministic(tmp_path: Path) -> None:
    serving = tmp_path / "superset.duckdb"
    first = build_bundle(tmp_path / "1.zip", serving).path.read_bytes()
    second = build_bundle(tmp_path / "2.zip", serving).path.read_bytes()
    assert first == second
    assert stable_uuid("chart", "x") == stable_uuid("chart", "x") != stable_uuid("chart", "y")


def test_bundle_layout_and_dashboard(bundle: bytes) -> None:
    docs = _docs(bundle)
    assert docs["metadata.yaml"]["version"] == EXPORT_VERSION == "1.0.0"
    assert {n.split("/")[0] for n in docs} == {"metadata.yaml", "databases", "datasets", "charts", "dashboards"}
    dash = docs["dashboards/akko-banking-fraud.yaml"]
    assert dash["dashboard_title"] == "AKKO Banking Fraud" and dash["slug"] == "akko-banking-fraud"
    charts = {d["uuid"]: d for n, d in docs.items() if n.startswith("charts/")}
    nodes = [v for v in dash["position"].values() if isinstance(v, dict) and v.get("type") == "CHART"]
    # Every chart is placed exactly once, each node has a uuid and a unique placeholder chartId.
    assert sorted(n["meta"]["uuid"] for n in nodes) == sorted(charts)
    assert len({n["meta"]["chartId"] for n in nodes}) == len(nodes)
    for row_id in dash["position"]["GRID_ID"]["children"]:
        assert sum(dash["position"][c]["meta"]["width"] for c in dash["position"][row_id]["children"]) <= 12
    titles = {c["slice_name"] for c in charts.values()}
    assert {"Transactions", "Flagged", "Fraud rate", "Fraud rate by region", "Daily transactions and flagged",
            "Memo sentiment by region", "Fraud rate by channel", "Fraud rate by merchant category",
            "Top flagged transactions"} <= titles
    assert any(t.startswith("Amount distribution") for t in titles)


def test_charts_carry_params_and_query_context(bundle: bytes) -> None:
    docs = _docs(bundle)
    datasets = {d["uuid"]: d for n, d in docs.items() if n.startswith("datasets/")}
    for name, chart in ((n, d) for n, d in docs.items() if n.startswith("charts/")):
        assert chart["params"]["viz_type"] == chart["viz_type"], name
        qc = json.loads(chart["query_context"])
        assert qc["queries"] and qc["form_data"] == chart["params"], name
        ds = datasets[chart["dataset_uuid"]]
        known = {c["column_name"] for c in ds["columns"]} | {m["metric_name"] for m in ds["metrics"]}
        for query in qc["queries"]:
            used = [c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]] + (query["metrics"] or [])
            assert set(used) <= known, (name, set(used) - known)


def test_database_points_at_serving_file_read_only(bundle: bytes, tmp_path: Path) -> None:
    db = _docs(bundle)["databases/akko_serving.yaml"]
    assert db["sqlalchemy_uri"] == f"duckdb:///{(tmp_path / 'serving' / 'superset.duckdb').resolve()}"
    assert db["expose_in_sqllab"] is False and db["allow_dml"] is False
    args = db["extra"]["engine_params"]["connect_args"]
    # The same arguments on a real serving file: reads work, writes and other files do not.
    serving = tmp_path / "serving" / "superset.duckdb"
    publish_serving_db(make_source(tmp_path / "curated.duckdb", 100), serving, mask_card_pan)
    secret = tmp_path / "curated.csv"
    secret.write_text("card_pan\n4111111111111111\n")
    with duckdb.connect(str(serving), **args) as con:
        assert con.sql("SELECT count(*) FROM marts.enriched_transactions").fetchone()[0] == 100
        with pytest.raises(duckdb.Error):
            con.execute("DELETE FROM marts.enriched_transactions")
        with pytest.raises(duckdb.Error):
            con.sql(f"SELECT * FROM read_csv('{secret}')").fetchall()
        with pytest.raises(duckdb.Error):
            con.execute(f"ATTACH '{tmp_path / 'curated.duckdb'}' AS curated")


def test_sub_bundles_and_dataset_ids(bundle: bytes) -> None:
    ds_uuids = [stable_uuid("dataset", k) for k in load_spec()["datasets"]]
    patched = with_dataset_ids(bundle, {ds_uuids[0]: 41, ds_uuids[1]: 42})
    for chart in (d for n, d in _docs(patched).items() if n.startswith("charts/")):
        ds_id = {ds_uuids[0]: 41, ds_uuids[1]: 42}[chart["dataset_uuid"]]
        qc = json.loads(chart["query_context"])
        assert qc["datasource"] == {"id": ds_id, "type": "table"}
        assert chart["params"]["datasource"] == qc["form_data"]["datasource"] == f"{ds_id}__table"
    for model, folders in {"Database": {"databases"}, "SqlaTable": {"databases", "datasets"},
                           "Slice": {"databases", "datasets", "charts"}}.items():
        docs = _docs(sub_bundle(bundle, model))
        assert docs["metadata.yaml"]["type"] == model
        assert {n.split("/")[0] for n in docs} - {"metadata.yaml"} == folders


def test_unreachable_superset_names_the_fix(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    # Nothing listens on that port once the socket is closed.
    with pytest.raises(SupersetUnreachableError, match=f"Superset is not reachable at {url}: run akko superset up"):
        import_dashboard(url, tmp_path / "missing.zip")
    with pytest.raises(SupersetUnreachableError, match="run akko superset up"):
        invalidate_cache(url)


def test_up_without_virtualenv_names_setup_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKKO_HOME", str(tmp_path))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("AKKO_SUPERSET_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    monkeypatch.setattr(server, "SUPERSET_VENV", tmp_path / "no-venv")
    with pytest.raises(server.SupersetError, match="run scripts/setup_superset.sh"):
        server.superset_up()
    status = server.superset_status()
    assert not status.running and not status.healthy


def test_config_refuses_to_start_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKKO_HOME", str(tmp_path))
    with pytest.raises(RuntimeError, match="run scripts/setup_superset.sh"):
        runpy.run_path(str(server.CONFIG_PATH))


def test_secrets_are_private_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "superset" / "secrets.json"
    runs = []
    for _ in range(2):  # the second run must keep the first run's values
        subprocess.run([sys.executable, str(server.SECRETS_SCRIPT), str(tmp_path)], check=True, capture_output=True)
        runs.append(json.loads(path.read_text()))
    data = runs[0]
    assert runs[1] == data and len(data["secret_key"]) >= 32 and len(data["admin_password"]) >= 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv("AKKO_HOME", str(tmp_path))
    config = runpy.run_path(str(server.CONFIG_PATH))
    assert config["SECRET_KEY"] == data["secret_key"]
    assert config["PUBLIC_ROLE_LIKE"] is None and config["STORE_CACHE_KEYS_IN_METADATA_DB"] is True
    assert config["CACHE_CONFIG"] == config["DATA_CACHE_CONFIG"]
    assert str(tmp_path) in config["SQLALCHEMY_DATABASE_URI"]


def test_k8s_bundle_reads_trino_as_the_service_user(tmp_path: Path, monkeypatch) -> None:
    """`akko superset-bundle --profile k8s` (deploy.sh): same dashboard, read from Trino as
    svc-superset, so Trino's OPA masks for that identity; nothing else differs from local."""
    from typer.testing import CliRunner

    from akko_assets.cli import app

    monkeypatch.setenv("TRINO_HOST", "trino")
    monkeypatch.delenv("TRINO_PORT", raising=False)
    out = tmp_path / "k8s.zip"
    result = CliRunner().invoke(app, ["superset-bundle", "--profile", "k8s", "--out", str(out)])
    assert result.exit_code == 0, result.output
    k8s = _docs(out.read_bytes())
    local = _docs(build_bundle(tmp_path / "local.zip", tmp_path / "superset.duckdb").path.read_bytes())
    database = k8s["databases/akko_serving.yaml"]
    assert database["sqlalchemy_uri"] == "trino://svc-superset@trino:8080/iceberg"
    assert database["extra"]["engine_params"]["connect_args"] == {} and not database["expose_in_sqllab"]
    assert local["databases/akko_serving.yaml"]["sqlalchemy_uri"].startswith("duckdb:///")
    assert {n: d for n, d in k8s.items() if not n.startswith("databases/")} == \
           {n: d for n, d in local.items() if not n.startswith("databases/")}
    bad = CliRunner().invoke(app, ["superset-bundle", "--profile", "cloud", "--out", str(out)])
    assert bad.exit_code == 1 and "use local or k8s" in bad.output


def test_every_akko_command_in_deploy_sh_exists() -> None:
    """deploy.sh runs the akko CLI: each command it calls must parse (a typo fails a deploy late)."""
    import re
    import shlex

    from typer.testing import CliRunner

    from akko_assets.cli import app
    from akko_assets.settings import REPO_ROOT

    deploy = (REPO_ROOT / "k8s" / "scripts" / "deploy.sh").read_text()
    calls = [shlex.split(m)[1:] for m in re.findall(r"^akko [^|&;\n]*", deploy, flags=re.M)]
    assert len(calls) >= 2, calls
    for args in calls:
        # Same subcommand and options, with --help: parsing must succeed without running anything.
        result = CliRunner().invoke(app, [*args, "--help"])
        assert result.exit_code == 0, f"akko {' '.join(args)}: {result.output}"
        options = [a for a in args if a.startswith("--")]
        assert all(o in result.output for o in options), f"akko {' '.join(args)}: unknown option in {options}"
