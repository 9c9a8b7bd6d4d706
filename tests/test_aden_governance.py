"""ADEN answers run as the asking user: masked roles never see a clear PAN or name, viewers only EU/APAC active rows."""

from __future__ import annotations

import json
import re

import dagster as dg
import pytest

from akko_assets.aden import ask
from akko_assets.catalog.assets import semantic_catalog
from akko_assets.catalog.semantic import catalog_path
from akko_assets.governance.sample import luhn_valid
from akko_assets.resources import AkkoSettingsResource, IcebergResource
from akko_assets.resources.engine import connect_curated
from akko_assets.settings import MASK, load_settings

PII_QUESTIONS = [
    "show card numbers of flagged transactions yesterday",
    "list card numbers and names of the 5 largest transactions last week",
    "Who are the top 5 customers by total spend last month?",
    "Show the 5 largest transactions last week",
    "which customers had the most flagged transactions in November, with names",
]


@pytest.fixture(scope="module")
def catalog_ready(pipeline_run):
    if not catalog_path(load_settings()).exists():
        result = dg.materialize([semantic_catalog], resources={"settings": AkkoSettingsResource(), "iceberg": IcebergResource()})
        assert result.success


@pytest.fixture(scope="module")
def clear_names(catalog_ready):
    con = connect_curated()
    try:
        return {r[0] for r in con.execute("SELECT DISTINCT customer_name FROM marts.dim_customers").fetchall()}
    finally:
        con.close()


def _text(answer) -> str:
    return json.dumps({"answer": answer.answer, "rows": [[str(v) for v in r] for r in answer.rows]})


def _luhn_numbers(text: str) -> list[str]:
    return [n for n in re.findall(r"(?<![\d.])\d{16}(?!\d)", text) if luhn_valid(n)]


def test_admin_sees_clear_values(catalog_ready, clear_names):
    answer = ask(PII_QUESTIONS[1], user="alice")
    assert _luhn_numbers(_text(answer)) and any(row[2] in clear_names for row in answer.rows)


@pytest.mark.parametrize("user", ["carol", "dave", "erin"])
@pytest.mark.parametrize("question", PII_QUESTIONS)
def test_masked_roles_never_get_a_clear_pan(catalog_ready, clear_names, user, question):
    answer = ask(question, user=user)
    assert not answer.refused, answer.reason
    assert answer.rows, "the question must return rows for the check to mean something"
    assert _luhn_numbers(_text(answer)) == []
    if "card_pan" in answer.columns:
        assert {row[answer.columns.index("card_pan")] for row in answer.rows} == {MASK}
    if user in ("dave", "erin"):
        text = _text(answer)
        assert not [name for name in clear_names if name in text]
        if "customer_name" in answer.columns:
            assert {row[answer.columns.index("customer_name")] for row in answer.rows} == {MASK}


def test_analyst_sees_names_but_not_pans(catalog_ready, clear_names):
    answer = ask(PII_QUESTIONS[1], user="carol")
    names = {row[answer.columns.index("customer_name")] for row in answer.rows}
    assert names <= clear_names and MASK not in names


def test_viewer_answers_cover_only_eu_apac_active_rows(catalog_ready):
    answer = ask("transactions by region and account status", user="erin")
    assert answer.rows and {(r[0], r[1]) for r in answer.rows} <= {("EU", "active"), ("APAC", "active")}
    rate = ask("What was the fraud rate last week?", user="erin")
    con = connect_curated()
    try:
        expected = con.execute(
            "SELECT avg(is_flagged::INT) FROM marts.enriched_transactions WHERE region IN ('EU', 'APAC') "
            "AND status = 'active' AND txn_date BETWEEN '2026-11-23' AND '2026-11-29'").fetchone()[0]
    finally:
        con.close()
    assert rate.rows[0][0] == pytest.approx(expected)
    listing = ask("Show the 5 largest transactions last week", user="erin")
    assert {r[listing.columns.index("region")] for r in listing.rows} <= {"EU", "APAC"}


def test_k8s_profile_answers_through_trino_as_the_asker(catalog_ready, monkeypatch):
    """AKKO_PROFILE=k8s: ADEN's SQL reaches Trino (tests/trino_standin.py) as the asking user, in
    Trino's dialect and already governed, and the answer equals the local one."""
    pytest.importorskip("trino")
    from trino_standin import TrinoStandIn

    from akko_assets.aden.service import Aden
    from akko_assets.governance import identity_for_user

    questions = [("Which regions saw a fraud rate above 5 % last week?", "carol"),
                 ("transactions by region and account status", "erin")]
    local = [ask(q, user=u) for q, u in questions]
    standin = TrinoStandIn(connect_curated)
    try:
        monkeypatch.setenv("AKKO_PROFILE", "k8s")
        monkeypatch.setenv("AKKO_REPLICATOR", "pyiceberg")
        monkeypatch.setenv("TRINO_HOST", "127.0.0.1")
        monkeypatch.setenv("TRINO_PORT", str(standin.port))
        aden = Aden(load_settings())
        answers = []
        for question, user in questions:
            answers.append(aden.ask(question, identity_for_user(user)))
            assert {r.user for r in standin.received} == {user}, "Trino must see the asker, not a service user"
            standin.received.clear()
            last_sql = aden.executor.rewrite(answers[-1].sql, identity_for_user(user))
    finally:
        standin.close()
    for answer, expected in zip(answers, local):
        assert not answer.refused, answer.reason
        assert answer.rows == expected.rows and answer.rows
    assert "region IN ('EU', 'APAC')" in last_sql and '"marts"."enriched_transactions"' in last_sql
