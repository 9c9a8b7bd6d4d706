"""ADEN's Streamlit page: AppTest in-process, and once in headless Chromium (screenshot aden.png:
docs/img/ with AKKO_WRITE_DOCS_SCREENSHOTS=1, else the test's tmp_path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from streamlit.testing.v1 import AppTest

from akko_assets.aden import ask
from akko_assets.catalog.assets import semantic_catalog
from akko_assets.catalog.semantic import catalog_path
from akko_assets.resources import AkkoSettingsResource, IcebergResource
from akko_assets.settings import REPO_ROOT, load_settings

APP = REPO_ROOT / "akko_assets" / "aden" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
SEED = "Which regions saw a fraud rate above 5 % last week?"


@pytest.fixture(scope="module")
def catalog_ready(pipeline_run):
    if not catalog_path(load_settings()).exists():
        result = dg.materialize([semantic_catalog], resources={"settings": AkkoSettingsResource(), "iceberg": IcebergResource()})
        assert result.success


def test_app_answers_as_the_selected_user(catalog_ready):
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    at.text_input(key="question").set_value("fraud rate by region last week")
    at.selectbox(key="user").set_value("erin")
    at.button[0].click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Fraud rate by region last week")
    assert "APAC" in at.success[0].value and "LATAM" not in at.success[0].value  # viewer row filter
    assert "GROUP BY region" in at.code[0].value
    assert len(at.dataframe) == 1 and set(at.dataframe[0].value["region"]) == {"EU", "APAC"}


def test_token_mode_answers_as_the_token_user_and_offers_no_selector(catalog_ready, monkeypatch):
    """k8s profile (here AKKO_ADEN_AUTH=token): no user selector, a token decides who asks."""
    from akko_assets.governance import issue_token

    monkeypatch.setenv("AKKO_ADEN_AUTH", "token")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and not at.selectbox
    at.text_input(key="question").set_value("fraud rate by region last week")
    at.button[0].click().run()
    assert at.error and "paste an access token" in at.error[0].value and not at.success
    at.text_input(key="token").set_value(issue_token("erin"))
    at.button[0].click().run()
    assert not at.exception and at.success, [e.value for e in at.error]
    assert set(at.dataframe[0].value["region"]) == {"EU", "APAC"}  # erin's viewer row filter
    at.text_input(key="token").set_value(issue_token("erin")[:-4] + "AAAA")
    at.button[0].click().run()
    assert at.error and "signature" in at.error[0].value


def test_app_shows_refusals(catalog_ready):
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="question").set_value("drop table marts.dim_customers")
    at.button[0].click().run()
    assert at.warning and "only reads data" in at.warning[0].value and not at.code


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
def test_app_in_headless_chromium(catalog_ready, screenshot_path):
    from playwright.sync_api import sync_playwright

    screenshot = screenshot_path("aden.png")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port), "--server.address", "127.0.0.1",
         "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.5)
        expected = ask(SEED, user="carol").answer
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--disable-sync", "--no-first-run"],
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
                box = page.get_by_label("Question")
                box.wait_for(timeout=60_000)
                box.fill(SEED)
                page.get_by_role("button", name="Ask").click()
                page.get_by_text(expected).wait_for(timeout=60_000)
                page.get_by_text("GROUP BY region").wait_for(timeout=10_000)
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()
        assert screenshot.stat().st_size > 10_000
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_aden_accepts_tokens_for_its_own_client_and_trino_only(catalog_ready):
    from akko_assets.governance import AccessDenied, issue_token

    for audience in ("aden", "trino"):
        answer = ask("fraud rate by region last week", token=issue_token("erin", audience=audience))
        assert not answer.refused and answer.rows, audience
    with pytest.raises(AccessDenied, match="expected 'aden' or 'trino'"):
        ask("fraud rate by region last week", token=issue_token("erin", audience="superset"))
