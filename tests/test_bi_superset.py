"""The dashboard against a real Superset started by this module (temp AKKO_HOME, free port).

Needs .venv-superset (scripts/setup_superset.sh) and Debian chromium for the browser test (its
screenshot dashboard.png goes to docs/img/ with AKKO_WRITE_DOCS_SCREENSHOTS=1, else to tmp_path).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import requests
from test_bi_serving import append_rows, make_source, mask_card_pan

from akko_assets.bi import server
from akko_assets.bi.bundle import build_bundle, load_spec
from akko_assets.bi.provision import import_dashboard, invalidate_cache, superset_session
from akko_assets.bi.serving import publish_serving_db, serving_db_path
from akko_assets.settings import MASK, load_settings

pytestmark = [
    pytest.mark.superset,
    pytest.mark.skipif(
        not (server.SUPERSET_VENV / "bin" / "superset").exists(),
        reason=f"no Superset virtualenv at {server.SUPERSET_VENV}: run scripts/setup_superset.sh",
    ),
]

CHROMIUM = "/usr/bin/chromium"
SLUG = "akko-banking-fraud"
PAN_RE = re.compile(r"(?<!\d)(?:\d[ -]?){15}\d(?!\d)")


@dataclass
class Env:
    url: str
    home: Path
    source: duckdb.DuckDBPyConnection
    serving: Path
    bundle: Path
    cold_start_s: float
    first_import: dict
    second_import: dict
    counts_after_first: dict[str, int]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _object_counts(url: str) -> dict[str, int]:
    session = superset_session(url)
    return {
        kind: session.get(f"{url}/api/v1/{kind}/", params={"q": "(page_size:1)"}, timeout=30).json()["count"]
        for kind in ("dashboard", "chart", "dataset", "database")
    }


def _chart_ids(url: str) -> dict[str, int]:
    session = superset_session(url)
    charts = session.get(f"{url}/api/v1/dashboard/{SLUG}/charts", timeout=30).json()["result"]
    return {c["slice_name"]: c["id"] for c in charts}


def _chart_data(url: str, chart_id: int) -> list[dict]:
    resp = superset_session(url).get(f"{url}/api/v1/chart/{chart_id}/data/", timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    return resp.json()["result"]


def _title(key: str) -> str:
    return load_spec()["charts"][key]["title"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("akko_home")
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.MonkeyPatch.context() as env_vars:  # module scope: the monkeypatch fixture is per test
        env_vars.setenv("AKKO_HOME", str(home))
        env_vars.setenv("AKKO_SUPERSET_URL", url)
        source = make_source(home / "curated.duckdb", 4000)
        serving = serving_db_path(load_settings())
        publish_serving_db(source, serving, mask_card_pan)
        started = time.monotonic()
        server.superset_up()
        cold_start = time.monotonic() - started
        try:
            bundle = build_bundle(home / "bundle.zip", serving).path
            first = import_dashboard(url, bundle)
            counts = _object_counts(url)
            second = import_dashboard(url, bundle)
            print(f"\nsuperset cold start {cold_start:.1f} s; import {first['seconds']} s, re-import {second['seconds']} s")
            yield Env(url, home, source, serving, bundle, cold_start, first, second, counts)
        finally:
            server.superset_down()
            source.close()


def test_import_within_target(env: Env) -> None:
    # Benchmark target from the issue: import <= 10 s. Cold start (target 60 s) is printed, not
    # asserted: on a shared 2-core machine it swings with other load (40 s idle, 95 s at load 20).
    assert env.first_import["seconds"] <= 10 and env.second_import["seconds"] <= 10


def test_import_twice_creates_nothing_new(env: Env) -> None:
    assert env.first_import["dashboard_id"] == env.second_import["dashboard_id"]
    assert env.first_import["chart_count"] == env.second_import["chart_count"] == len(load_spec()["charts"])
    assert _object_counts(env.url) == env.counts_after_first == {"dashboard": 1, "chart": 12, "dataset": 2, "database": 1}
    dash = superset_session(env.url).get(f"{env.url}/api/v1/dashboard/{SLUG}", timeout=30).json()["result"]
    assert dash["dashboard_title"] == "AKKO Banking Fraud"
    assert env.second_import["url"] == f"{env.url}/superset/dashboard/{SLUG}/"


def test_every_chart_returns_rows_and_pans_stay_masked(env: Env) -> None:
    ids = _chart_ids(env.url)
    assert len(ids) == 12
    for title, chart_id in ids.items():
        results = _chart_data(env.url, chart_id)
        assert results and all(r["rowcount"] > 0 and not r.get("error") for r in results), title
    rows = _chart_data(env.url, ids[_title("top_flagged_transactions")])[0]["data"]
    assert {r["card_pan"] for r in rows} == {MASK}
    assert all(r["customer_name"] for r in rows)  # analyst sees names
    scores = [r["fraud_score"] for r in rows]
    assert scores == sorted(scores, reverse=True)


def test_fraud_rate_by_region_equals_serving_query(env: Env) -> None:
    chart = _chart_data(env.url, _chart_ids(env.url)[_title("fraud_rate_by_region")])[0]["data"]
    with duckdb.connect(str(env.serving), read_only=True) as con:
        expected = dict(
            con.sql(
                "SELECT region, avg(CASE WHEN is_flagged THEN 1.0 ELSE 0.0 END) "
                "FROM marts.enriched_transactions GROUP BY region"
            ).fetchall()
        )
    got = {r["region"]: r["fraud_rate"] for r in chart}
    assert got.keys() == expected.keys() and len(got) == 5
    for region, rate in expected.items():
        assert got[region] == pytest.approx(float(rate), abs=1e-9), region


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium missing: apt-get install -y chromium")
def test_dashboard_renders_in_headless_chromium(env: Env, screenshot_path) -> None:
    from playwright.sync_api import sync_playwright

    screenshot = screenshot_path("dashboard.png")
    # The source holds real-looking (Luhn-valid) card numbers, so a leak would be caught below.
    clear = env.source.sql("SELECT card_pan FROM marts.enriched_transactions LIMIT 1").fetchone()[0]
    assert _luhn_ok(clear)
    user, password = server.admin_credentials(env.home / "superset")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{env.url}/login/")
            page.fill("#username", user)
            page.fill("#password", password)
            page.click("[data-test=login-button]")
            page.wait_for_url("**/superset/welcome/**", timeout=90_000, wait_until="commit")
            page.goto(f"{env.url}/superset/dashboard/{SLUG}/")
            # Rendered = an ECharts canvas, a table or a big number in every chart holder and no
            # loading spinner left.
            page.wait_for_function(
                """n => {
                    const holders = [...document.querySelectorAll('[data-test=dashboard-component-chart-holder]')];
                    return holders.length === n && holders.every(h =>
                        h.querySelector('canvas, table, .header-line') &&
                        !h.querySelector('.loading, [aria-label=Loading], [data-test=loading-indicator]'));
                }""",
                arg=12,
                timeout=90_000,
            )
            errors = page.query_selector_all(
                "[data-test=dashboard-component-chart-holder] :is([data-test=chart-error-alert], .ant-alert-error, .alert-danger)"
            )
            assert not errors, [e.inner_text() for e in errors]
            text = page.inner_text("body")
            assert "AKKO Banking Fraud" in text and MASK in text
            leaked = [m for m in PAN_RE.findall(text) if _luhn_ok(m)]
            assert not leaked, f"clear card numbers on the dashboard: {leaked[:3]}"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 50_000


def test_cache_changes_only_after_invalidation(env: Env) -> None:
    kpi = _chart_ids(env.url)[_title("kpi_transactions")]
    before = _chart_data(env.url, kpi)[0]
    n_before = before["data"][0]["transactions"]

    append_rows(env.source, 1000, seed=99, id_offset=1_000_000)
    publish_serving_db(env.source, env.serving, mask_card_pan)

    cached = _chart_data(env.url, kpi)[0]
    assert cached["is_cached"] and cached["data"][0]["transactions"] == n_before

    assert invalidate_cache(env.url) == 2
    fresh = _chart_data(env.url, kpi)[0]
    assert not fresh["is_cached"]
    assert fresh["data"][0]["transactions"] == n_before + 1000


def test_up_is_idempotent_and_down_stops(env: Env) -> None:
    status = server.superset_status()
    assert status.running and status.healthy
    started = time.monotonic()
    again = server.superset_up()
    assert again.pid == status.pid and time.monotonic() - started < 5
    stopped = server.superset_down()
    assert not stopped.running and not stopped.healthy
    with pytest.raises(server.SupersetError, match=f"Superset is not reachable at {re.escape(env.url)}: run akko superset up"):
        import_dashboard(env.url, env.bundle)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{env.url}/health", timeout=2)


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in re.sub(r"\D", "", number)]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(reversed(digits)))
    return len(digits) >= 13 and total % 10 == 0

