"""Import the dashboard bundle into a running Superset and invalidate its data cache (REST API)."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import requests
import yaml

from akko_assets.bi.bundle import build_bundle, load_spec, stable_uuid, sub_bundle, with_dataset_ids
from akko_assets.bi.server import SupersetError, admin_credentials, is_healthy, superset_url
from akko_assets.bi.serving import serving_db_path
from akko_assets.settings import Settings, load_settings


class SupersetUnreachableError(SupersetError):
    pass


def superset_session(url: str) -> requests.Session:
    """A session logged in as the provisioning admin: bearer token + CSRF token + Referer.

    Superset checks the CSRF token against the session cookie, so all calls must share one
    requests.Session.
    """
    url = url.rstrip("/")
    if not is_healthy(url):
        raise SupersetUnreachableError(f"Superset is not reachable at {url}: run akko superset up")
    user, password = admin_credentials()
    session = requests.Session()
    resp = session.post(
        f"{url}/api/v1/security/login",
        json={"username": user, "password": password, "provider": "db", "refresh": False},
        timeout=30,
    )
    if resp.status_code != 200:
        raise SupersetError(
            f"login to {url} as {user!r} failed ({resp.status_code}): the admin password in "
            "AKKO_HOME/superset/secrets.json must match the one Superset was initialised with"
        )
    session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"
    csrf = session.get(f"{url}/api/v1/security/csrf_token/", timeout=30)
    csrf.raise_for_status()
    session.headers.update({"X-CSRFToken": csrf.json()["result"], "Referer": url})
    return session


def import_dashboard(url: str, bundle_path: Path) -> dict[str, Any]:
    """Import the bundle with overwrite; idempotent because every object has a stable UUID.

    Databases, datasets, charts and the dashboard are imported in that order through their own
    endpoints, so changes to any of them in superset_assets/ reach Superset on re-import.

    Returns dashboard_id, url, chart_count, dataset_ids and seconds.
    """
    started = time.monotonic()
    url = url.rstrip("/")
    session = superset_session(url)
    bundle = Path(bundle_path).read_bytes()
    docs = _bundle_docs(bundle)
    dataset_uuids = [d["uuid"] for name, d in docs.items() if name.startswith("datasets/")]
    slug = next(d["slug"] for name, d in docs.items() if name.startswith("dashboards/"))

    _post_import(session, url, "database", sub_bundle(bundle, "Database"))
    _post_import(session, url, "dataset", sub_bundle(bundle, "SqlaTable"))
    ids = _dataset_ids(session, url, dataset_uuids)
    missing = set(dataset_uuids) - set(ids)
    if missing:
        raise SupersetError(f"datasets {sorted(missing)} are missing after import: see AKKO_HOME/superset/superset.log")
    # The chart data endpoint runs each chart's saved query_context, which names the dataset by
    # id; ids exist only now, so they are written in before the charts are imported.
    bundle = with_dataset_ids(bundle, ids)
    _post_import(session, url, "chart", sub_bundle(bundle, "Slice"))
    _post_import(session, url, "dashboard", sub_bundle(bundle, "Dashboard"))

    dash = session.get(f"{url}/api/v1/dashboard/{slug}", timeout=30)
    dash.raise_for_status()
    charts = session.get(f"{url}/api/v1/dashboard/{slug}/charts", timeout=30)
    charts.raise_for_status()
    return {
        "dashboard_id": dash.json()["result"]["id"],
        "url": f"{url}/superset/dashboard/{slug}/",
        "chart_count": len(charts.json()["result"]),
        "dataset_ids": ids,
        "seconds": round(time.monotonic() - started, 2),
    }


def provision_dashboard(url: str | None = None, settings: Settings | None = None, force: bool = False) -> dict[str, Any]:
    """Traced wrapper of `_provision_dashboard` (service superset-provisioner)."""
    from akko_assets.observability import tracing

    resolved = (url or superset_url()).rstrip("/")
    with tracing.span("superset.provision_dashboard", tracing.SERVICE_SUPERSET,
                      attributes={"superset.url": resolved, "superset.force": force}) as current:
        result = _provision_dashboard(resolved, settings, force)
        current.set_attribute("superset.imported", bool(result.get("imported")))
        current.set_attribute("superset.chart_count", int(result.get("chart_count", 0)))
        return result


def _provision_dashboard(url: str | None = None, settings: Settings | None = None, force: bool = False) -> dict[str, Any]:
    """Build the bundle for this installation's serving file and import it (the bi asset's body).

    When the bundle is byte-identical to the one last imported and the dashboard still exists,
    nothing is imported: a re-import rewrites every object, which would also drop the chart cache
    that the run-status sensor is meant to invalidate.
    """
    import hashlib

    settings = settings or load_settings()
    url = (url or superset_url()).rstrip("/")
    serving = serving_db_path(settings)
    if not serving.exists():
        raise SupersetError(f"{serving} does not exist: publish the serving DuckDB file (bi stage) before the dashboard")
    bundle = build_bundle(settings.home / "superset" / "akko_banking_fraud_bundle.zip", serving)
    digest = hashlib.sha256(bundle.path.read_bytes()).hexdigest()
    marker = settings.home / "superset" / "last_import.sha256"
    if not force and marker.exists() and marker.read_text().strip() == f"{url} {digest}":
        session = superset_session(url)
        found = session.get(f"{url}/api/v1/dashboard/{bundle.slug}", timeout=30)
        if found.status_code == 200:
            charts = session.get(f"{url}/api/v1/dashboard/{bundle.slug}/charts", timeout=30).json()["result"]
            return {"dashboard_id": found.json()["result"]["id"], "url": f"{url}/superset/dashboard/{bundle.slug}/",
                    "chart_count": len(charts), "seconds": 0.0, "imported": False}
    result = import_dashboard(url, bundle.path)
    marker.write_text(f"{url} {digest}")
    return {**result, "imported": True}


def invalidate_cache(url: str) -> int:
    """Drop cached chart data of the dashboard's datasets; returns how many datasets were cleared.

    Works because superset_config.py records cache keys in the metadata DB and keeps the data
    cache in CACHE_CONFIG's store (otherwise Superset answers 201 and deletes nothing).
    """
    url = url.rstrip("/")
    session = superset_session(url)
    uuids = [stable_uuid("dataset", key) for key in load_spec()["datasets"]]
    ids = _dataset_ids(session, url, uuids)
    if not ids:
        return 0
    resp = session.post(
        f"{url}/api/v1/cachekey/invalidate",
        json={"datasource_uids": [f"{i}__table" for i in ids.values()]},
        timeout=30,
    )
    if resp.status_code not in (200, 201):
        raise SupersetError(f"cache invalidation failed ({resp.status_code}): {resp.text[:300]}")
    return len(ids)


def _bundle_docs(bundle: bytes) -> dict[str, dict[str, Any]]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {name.split("/", 1)[1]: yaml.safe_load(zf.read(name)) for name in zf.namelist()}


def _dataset_ids(session: requests.Session, url: str, uuids: list[str]) -> dict[str, int]:
    """Superset ids of the datasets with these UUIDs (absent ones are left out)."""
    wanted, found, page = set(uuids), {}, 0
    while True:
        resp = session.get(
            f"{url}/api/v1/dataset/",
            params={"q": f"(columns:!(id,uuid),page:{page},page_size:100)"},
            timeout=30,
        )
        resp.raise_for_status()
        rows = resp.json()["result"]
        found.update({r["uuid"]: r["id"] for r in rows if r["uuid"] in wanted})
        if len(rows) < 100 or len(found) == len(wanted):
            return found
        page += 1


def _post_import(session: requests.Session, url: str, resource: str, bundle: bytes) -> None:
    resp = session.post(
        f"{url}/api/v1/{resource}/import/",
        files={"formData": ("akko_banking_fraud.zip", bundle, "application/zip")},
        data={"overwrite": "true", "passwords": "{}"},
        timeout=120,
    )
    if resp.status_code != 200:
        raise SupersetError(
            f"{resource} import failed ({resp.status_code}): {resp.text[:500]} "
            "(Superset puts the reason of a 500 only in AKKO_HOME/superset/superset.log)"
        )
